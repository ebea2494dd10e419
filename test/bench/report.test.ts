import t from 'tap';
import { cpuSecondsPerGB, evaluateTargets, formatNotes, formatTable } from '../../bench/report.js';
import type { ScenarioId, ScenarioResult, StreamResult } from '../../bench/scenarios.js';

function stream(over: { mbps?: number; p99?: number; missing?: number; receivers?: number; closedEarly?: Record<string, number> } = {}): StreamResult {
  const receivers = over.receivers ?? 10;
  return {
    receiversRequested: receivers,
    receiversConnected: receivers,
    connectFailed: 0,
    firstConnectError: null,
    connectMs: 12,
    windowS: 10,
    published: { messages: 100, mbps: (over.mbps ?? 1000) / receivers, lateSends: 0, maxBacklogBytes: 0, closedByServer: false, serverTexts: [] },
    deliveredMbps: over.mbps ?? 1000,
    perReceiverMbps: (over.mbps ?? 1000) / receivers,
    latencyMs: { count: 1000, p50: 1, p90: 2, p99: over.p99 ?? 10, max: 20, mean: 1.5 },
    loss: { missing: over.missing ?? 0, expected: 100 * receivers, ratio: (over.missing ?? 0) / (100 * receivers), outOfOrder: 0, bad: { short: 0, foreign: 0, length: 0, corrupt: 0 }, protocolErrors: 0, closedEarly: over.closedEarly ?? {}, drained: true },
    receiverTexts: {},
    teardown: { closedByServer: receivers, closeCodes: { '1000': receivers }, stillOpen: 0, paused: [] },
  };
}

function result(id: ScenarioId, rep: number, s: StreamResult, cpu = 50, peakRssMb = 60): ScenarioResult {
  return { id, rep, title: id, kind: 'stream', transport: id === 'd' ? 'tcp' : 'ws', server: { cpuPercent: cpu, peakRssMb, rssBeforeMb: 50, rssEndMb: 55 }, generatorCpuPercent: 80, stream: s, notes: [] };
}

const verdictOf = (targets: ReturnType<typeof evaluateTargets>, prefix: string): string | undefined => targets.find((x) => x.target.startsWith(prefix))?.verdict;

t.test('(c) vs (d) is a ratio of delivered throughput within the run', async (t) => {
  const pass = evaluateTargets([result('c', 1, stream({ mbps: 960 })), result('d', 1, stream({ mbps: 1000 }))]);
  t.equal(verdictOf(pass, '(c)'), 'PASS');
  t.match(pass[0]!.detail, /96\.0%/);
  const miss = evaluateTargets([result('c', 1, stream({ mbps: 940 })), result('d', 1, stream({ mbps: 1000 }))]);
  t.equal(verdictOf(miss, '(c)'), 'MISS');
  t.match(miss[0]!.detail, /--cpu-prof/, 'a missed target carries the profiling hint');
  t.equal(verdictOf(evaluateTargets([result('c', 1, stream())]), '(c)'), 'N/A', 'needs d in the same run');
});

t.test('repetitions: (c)/(d) uses the median ratio', async (t) => {
  const targets = evaluateTargets([
    result('c', 1, stream({ mbps: 800 })), result('d', 1, stream({ mbps: 1000 })), // 80%
    result('c', 2, stream({ mbps: 990 })), result('d', 2, stream({ mbps: 1000 })), // 99%
    result('c', 3, stream({ mbps: 1000 })), result('d', 3, stream({ mbps: 1000 })), // 100%
  ]);
  t.equal(verdictOf(targets, '(c)'), 'PASS');
  t.match(targets[0]!.detail, /99\.0%, median of/);
});

t.test('zero-loss targets name what went wrong', async (t) => {
  const targets = evaluateTargets([result('a', 1, stream()), result('b', 1, stream({ missing: 3, closedEarly: { '1013': 1 } }))]);
  t.equal(verdictOf(targets, '(a) zero loss'), 'PASS');
  t.equal(verdictOf(targets, '(b) zero loss'), 'MISS');
  const b = targets.find((x) => x.target.startsWith('(b)'))!;
  t.match(b.detail, /3\/1000 messages lost/);
  t.match(b.detail, /1 receivers closed early/);
});

t.test('a miss in any repetition is a miss', async (t) => {
  const targets = evaluateTargets([result('a', 1, stream()), result('a', 2, stream({ missing: 1 }))]);
  t.equal(verdictOf(targets, '(a) zero loss'), 'MISS');
  t.match(targets.find((x) => x.target.startsWith('(a)'))!.detail, /#1: .* \| #2: /);
});

t.test('(f) is judged against (a) of the same repetition', async (t) => {
  const ok = evaluateTargets([result('a', 1, stream({ p99: 10 }), 5, 60), result('f', 1, stream({ p99: 10.5 }), 5, 70)]);
  t.equal(verdictOf(ok, '(f) p99'), 'PASS');
  t.equal(verdictOf(ok, '(f) server RSS'), 'PASS');
  const bad = evaluateTargets([result('a', 1, stream({ p99: 10 }), 5, 60), result('f', 1, stream({ p99: 12 }), 5, 100)]);
  t.equal(verdictOf(bad, '(f) p99'), 'MISS');
  t.equal(verdictOf(bad, '(f) server RSS'), 'MISS');
  t.equal(verdictOf(evaluateTargets([result('f', 1, stream())]), '(f) p99 / RSS'), 'N/A');
});

t.test('(e) idle receivers: RSS per receiver against 10 KiB', async (t) => {
  const idle = (kb: number): ScenarioResult => ({
    id: 'e', rep: 1, title: 'e', kind: 'idle', transport: 'ws', server: null, generatorCpuPercent: null, notes: [],
    idle: { receiversConnected: 10000, connectFailed: 0, firstConnectError: null, connectMs: 1000, rssPerReceiverKb: kb, rssBeforeMb: 60, rssAfterMb: 80 },
  });
  t.equal(verdictOf(evaluateTargets([idle(2.3)]), '(e)'), 'PASS');
  t.equal(verdictOf(evaluateTargets([idle(12)]), '(e)'), 'MISS');
});

t.test('cpu cost per GB and the table', async (t) => {
  const r = result('c', 1, stream({ mbps: 8000 }), 100);
  t.equal(cpuSecondsPerGB(r), 1, '100% of a core for 1 GB/s is 1 CPU-second per GB');
  const parse = [{ container: 'webm' as const, targetMbps: 4, actualMbps: 4.1, mediaSeconds: 10, extraCorePercent: 0.012, mediaCorePercent: 0.05, opaqueCorePercent: 0.038 }];
  const table = formatTable([r, { id: 'g', rep: 1, title: 'g', kind: 'parse', transport: null, server: null, generatorCpuPercent: null, notes: ['later'], parse }]);
  const lines = table.split('\n');
  t.equal(lines.length, 4, 'header, rule and one row per result');
  t.match(lines[2], /^c\s+10\/10/);
  t.match(lines[3], /parse \+0\.012% core/);
  t.ok(formatNotes([r]).some((n) => n.includes('published 100 msgs')));
});

t.test('targets measured while the machine was busy are flagged', async (t) => {
  const noisy = result('a', 1, stream({ missing: 1 }));
  noisy.server = { ...noisy.server!, otherCpuPercent: 150 };
  const [target] = evaluateTargets([noisy]);
  t.match(target!.detail, /machine busy with other work during a#1: unreliable/);
  t.ok(formatNotes([noisy]).some((n) => n.startsWith('(a) UNRELIABLE')));
  const quiet = result('a', 1, stream());
  quiet.server = { ...quiet.server!, otherCpuPercent: 5 };
  t.notMatch(evaluateTargets([quiet])[0]!.detail, /unreliable/);
});

t.test('(g) compares the parsing cost with the server CPU of (a) scaled to the stream rate', async (t) => {
  const g = (extra: number): ScenarioResult => ({
    id: 'g', rep: 1, title: 'g', kind: 'parse', transport: null, server: null, generatorCpuPercent: null, notes: [],
    parse: [{ container: 'flv', targetMbps: 20, actualMbps: 20, mediaSeconds: 10, extraCorePercent: extra, mediaCorePercent: extra + 0.1, opaqueCorePercent: 0.1 }],
  });
  // (a): 4% of a core at 4 Mbit/s, so a 20 Mbit/s stream costs about 20%; 5% of that is 1%.
  t.equal(verdictOf(evaluateTargets([result('a', 1, stream(), 4), g(0.9)]), '(g)'), 'PASS');
  t.equal(verdictOf(evaluateTargets([result('a', 1, stream(), 4), g(1.1)]), '(g)'), 'MISS');
  t.equal(verdictOf(evaluateTargets([g(0.9)]), '(g)'), 'INFO', 'without (a) only the absolute cost is reported');
});
