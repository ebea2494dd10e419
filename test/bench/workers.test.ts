import t from 'tap';
import { evaluateTargets, formatTable } from '../../bench/report.js';
import type { ScenarioId, ScenarioResult, StreamResult } from '../../bench/scenarios.js';
import { compareWorkers, formatWorkers, parseServerWorkers, workerTargets } from '../../bench/workers.js';

function stream(p99: number, missing = 0, mbps = 600): StreamResult {
  return {
    receiversRequested: 300,
    receiversConnected: 300,
    connectFailed: 0,
    firstConnectError: null,
    connectMs: 100,
    windowS: 10,
    published: { messages: 23000, mbps, lateSends: 0, maxBacklogBytes: 0, closedByServer: false, serverTexts: [] },
    deliveredMbps: mbps,
    perReceiverMbps: mbps / 300,
    latencyMs: { count: 23000, p50: p99 / 3, p90: p99 / 2, p99, max: p99 * 2, mean: p99 / 3 },
    loss: { missing, expected: 23000, ratio: missing / 23000, outOfOrder: 0, bad: { short: 0, foreign: 0, length: 0, corrupt: 0 }, protocolErrors: 0, closedEarly: {}, drained: true },
    receiverTexts: {},
    teardown: { closedByServer: 300, closeCodes: { '1000': 300 }, stillOpen: 0, paused: [] },
  };
}

/** A result with the server's total CPU and its busiest thread, in % of a core. */
function run(id: ScenarioId, workers: string | undefined, cpu: number, busiest: number, p99: number, opts: { rep?: number; missing?: number; busy?: number; generator?: number; other?: number } = {}): ScenarioResult {
  const thread = { pid: 10, tid: 10, comm: 'node', main: true, cpuSeconds: busiest / 10, percent: busiest };
  return {
    id,
    rep: opts.rep ?? 1,
    ...(workers === undefined ? {} : { serverWorkers: workers }),
    title: id,
    kind: 'stream',
    transport: 'ws',
    server: {
      cpuPercent: cpu,
      otherCpuPercent: opts.other ?? 0,
      peakRssMb: 80,
      rssBeforeMb: 60,
      rssEndMb: 70,
      threads: { windowS: 10, threads: [thread], busiest: thread, totalCpuSeconds: cpu / 10, busyThreads: opts.busy ?? 2 },
    },
    generatorCpuPercent: opts.generator ?? 30,
    stream: stream(p99, opts.missing ?? 0),
    notes: [],
  };
}

const find = (list: Array<{ target: string; verdict: string; detail: string }>, part: string): { target: string; verdict: string; detail: string } => {
  const hit = list.find((x) => x.target.includes(part));
  if (!hit) throw new Error(`no target with '${part}' in ${list.map((x) => x.target).join(' / ')}`);
  return hit;
};

t.test('--server-workers accepts auto and integers >= 1, nothing else', async (t) => {
  t.same(parseServerWorkers('1,2'), ['1', '2']);
  t.same(parseServerWorkers(' 1 , auto '), ['1', 'auto']);
  t.throws(() => parseServerWorkers('0,2'), /'0' is not auto or an integer >= 1/);
  t.throws(() => parseServerWorkers('1,two'), /'two'/);
  t.throws(() => parseServerWorkers('1.5'), /'1.5'/);
  t.throws(() => parseServerWorkers('1,1'), /repeats a value/);
  t.throws(() => parseServerWorkers(','), /at least one value/);
});

t.test('each worker count is compared with the first one of the same scenario and repetition', async (t) => {
  const results = [run('a', '1', 40, 38, 10), run('a', '2', 44, 22, 9), run('channels', '1', 60, 55, 20), run('channels', '2', 75, 40, 25), run('a-tcp', undefined, 40, 40, 10)];
  const cmp = compareWorkers(results);
  t.equal(cmp.length, 2, 'one comparison per scenario; runs without WORKERS are left out');
  const a = cmp.find((c) => c.id === 'a')!;
  t.equal(a.baseline.workers, '1');
  t.equal(a.other.workers, '2');
  t.ok(Math.abs(a.busiestRatio! - 22 / 38) < 1e-9);
  t.ok(Math.abs(a.totalRatio - 44 / 40) < 1e-9);
  t.ok(Math.abs(a.p99Ratio - 0.9) < 1e-9);
  t.equal(a.loadRatio, 1);
});

t.test('the issue targets: busiest <= 0.6x, total <= 1.15x, p99 <= baseline, zero loss', async (t) => {
  const pass = workerTargets(compareWorkers([run('a', '1', 40, 38, 10), run('a', '2', 44, 22, 9)]));
  t.equal(pass.length, 4);
  t.same(pass.map((x) => x.verdict), ['PASS', 'PASS', 'PASS', 'PASS']);
  t.match(find(pass, 'busiest').detail, /busiest thread 2\.20 s = 22\.0% of a core vs 3\.80 s = 38\.0% \(x0\.58, capacity x1\.73\)/);
  t.match(find(pass, 'total').detail, /4\.40 s = 44\.0% of a core vs 4\.00 s = 40\.0% \(x1\.10\)/);
  t.match(find(pass, 'busiest').target, /^\(a\) WORKERS=2 vs 1: busiest thread <= 0\.6x$/);

  const miss = workerTargets(compareWorkers([run('mid', '1', 40, 38, 10), run('mid', '2', 47, 24, 10.5, { missing: 3 })]));
  t.equal(find(miss, 'busiest').verdict, 'MISS', '24/38 = 0.63 > 0.6');
  t.equal(find(miss, 'total').verdict, 'MISS', '47/40 = 1.175 > 1.15');
  t.equal(find(miss, 'p99').verdict, 'MISS');
  t.equal(find(miss, 'zero loss').verdict, 'MISS');
  t.match(find(miss, 'zero loss').detail, /WORKERS=2: 3 of 23000 lost/);
});

t.test('one busy thread under load says that WORKERS had no effect', async (t) => {
  const same = workerTargets(compareWorkers([run('a', '1', 40, 38, 10, { busy: 1 }), run('a', '2', 40, 38, 10, { busy: 1 })]));
  t.match(find(same, 'busiest').detail, /only 1 thread above 10% of a core with WORKERS=2: the server did not spread the work/);
  const light = workerTargets(compareWorkers([run('a', '1', 5, 5, 10, { busy: 1 }), run('a', '2', 5, 5, 10, { busy: 1 })]));
  t.notMatch(find(light, 'busiest').detail, /did not spread/, 'not said when no thread is busy anyway');
});

t.test('evaluateTargets: per-WORKERS targets, figures that do not depend on WORKERS once, repetitions merged', async (t) => {
  const results = [
    run('a', '1', 40, 38, 10, { rep: 1 }), run('a', '2', 44, 22, 10, { rep: 1 }), run('a-tcp', undefined, 40, 40, 10, { rep: 1 }),
    run('a', '1', 40, 38, 10, { rep: 2 }), run('a', '2', 44, 30, 10, { rep: 2 }), run('a-tcp', undefined, 40, 40, 10, { rep: 2 }),
  ];
  results[4]!.stream!.loss.missing = 2;
  const targets = evaluateTargets(results);
  t.equal(find(targets, '(a) zero loss [WORKERS=1]').verdict, 'PASS');
  t.equal(find(targets, '(a) zero loss [WORKERS=2]').verdict, 'MISS', 'rep 2 lost 2 with WORKERS=2');
  t.same(targets.filter((x) => x.target.startsWith('(a) latency vs its plain-TCP twin')).map((x) => x.target), ['(a) latency vs its plain-TCP twin'], 'same figures for both worker counts: listed once, unnamed');
  results[1]!.stream!.latencyMs.p99 = 8;
  t.same(
    evaluateTargets(results).filter((x) => x.target.startsWith('(a) latency vs its plain-TCP twin')).map((x) => x.target),
    ['(a) latency vs its plain-TCP twin [WORKERS=1]', '(a) latency vs its plain-TCP twin [WORKERS=2]'],
    'different figures: one per worker count',
  );
  const busiest = find(targets, '(a) WORKERS=2 vs 1: busiest');
  t.equal(busiest.verdict, 'MISS', 'rep 2: 30/38 > 0.6');
  t.match(busiest.detail, /#1: .* \| #2: /);
  t.equal(evaluateTargets([run('a', undefined, 40, 38, 10)]).some((x) => x.target.includes('WORKERS')), false, 'no worker targets without --server-workers');
});

t.test('the side-by-side table and the machine-bound notes', async (t) => {
  const results = [run('a', '1', 40, 38, 10, { generator: 60, other: 10 }), run('a', '2', 44, 22, 9, { generator: 70, other: 50 })];
  const lines = formatWorkers(results, 2);
  t.match(lines[0], /^Worker threads .*ratios to WORKERS=1/);
  t.match(lines[3], /^a\s+1\s+600\s+10\.00\s+0\s+40\.0\s+38\.0\s+2\s+60\.0\s+base$/);
  t.match(lines[4], /^a\s+2\s+600\s+9\.00\s+0\s+44\.0\s+22\.0\s+2\s+70\.0\s+x0\.58\s+x1\.10\s+x0\.90$/);
  t.equal(lines.filter((l) => l.includes('machine-bound')).length, 1, 'only the run that filled 80% of the cores');
  t.match(lines.find((l) => l.includes('machine-bound')), /a WORKERS=2: server 44\.0% \+ generator 70\.0% \+ other work 50\.0% = 82% of the 2 cores/);
  t.same(formatWorkers([run('a', undefined, 40, 38, 10)], 2), [], 'nothing without --server-workers');
  const table = formatTable(results).split('\n');
  t.match(table[0], /srv CPU%\s+top thr%/);
  t.match(table[2], /^a W=1\s/);
  t.match(table[3], /^a W=2\s.*\s44\s+22\s/);
});
