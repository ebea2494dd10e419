/**
 * Entry point: `node dist/bench/run.js [options]` (npm run bench).
 * Parses options, runs the selected scenarios one after another against a
 * fresh server each, prints the table and target verdicts (or JSON).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeSelfSignedCertificate } from './certificate.js';
import { formatEdge, runEdgeScenario, type EdgeRunResult } from './edge.js';
import { WorkerPool } from './pool.js';
import { evaluateTargets, formatNotes, formatTable, machineInfo } from './report.js';
import { ALL_SCENARIOS, runScenario, scenarioSpecs, usesServer, usesTls, type RunContext, type ScenarioId, type ScenarioResult } from './scenarios.js';
import { formatWorkers, parseServerWorkers } from './workers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TCP_RELAY = fileURLToPath(new URL('./tcp-baseline.js', import.meta.url));

const USAGE = `Usage: node dist/bench/run.js [options]

  --scenario LIST         comma-separated from a,a-tcp,a-wss,b,b-tcp,c,d,e,f,g,channels,mid,
                          memory,scale,scale-tcp,edge
                          (default: all; *-tcp are plain-TCP twins for reference; a-wss is (a)
                          over TLS; channels: 300 channels x 1 receiver; mid: 20 channels x 50;
                          edge: origin + two edge servers, see bench/edge.ts)
  --server-workers LIST   run each scenario that uses our server once per value, side by side,
                          with WORKERS=<value> in the server's environment (values: auto or an
                          integer >= 1, e.g. 1,2); the first value is the baseline of the
                          comparison (busiest thread, total CPU, p99, loss)
  --edge-viewers LIST     viewer counts (over two edges) tried by 'edge' (default 100,1000)
  --duration S            measured seconds per scenario (default 10)
  --warmup S              seconds published before measuring (default 1)
  --receivers-scale X     multiply the receiver counts of a,b,c,d,f, the channels of 'channels',
                          the receivers per channel of 'mid' and the publishers of memory,
                          e.g. 0.1 for a quick run (default 1)
  --scale-steps LIST      receiver counts tried by 'scale' (default 1000,2000,4000,6000)
  --idle-receivers N      receivers for scenario e (default 10000)
  --server-cmd CMD        shell command of the server under test, with {port}
                          (default: our server, see docs/benchmarks.md)
  --workers N             receiver worker processes of the load generator (default 2; the
                          server's threads are --server-workers)
  --source-addrs N        spread receivers over 127.0.0.1..127.0.0.N (default 4)
  --connect-concurrency N handshakes in flight per worker (default 256)
  --key K                 stream key in the URL (default bench)
  --skip-verify           do not memcmp payloads (lighter generator)
  --repeat N              run the scenario list N times, interleaved; the c/d verdict
                          uses the median ratio (default 1)
  --quiet-wait S          before each scenario wait up to S seconds for other work on the
                          machine to drop below 25% of a core (default 60; 0 = don't wait)
  --json                  print the JSON document instead of the table
  --out FILE              also write the JSON document to FILE
  --max-minutes M         hard limit for the whole run (default 30)
`;

function list(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

function positive(name: string, s: string | undefined, fallback: number): number {
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${name} must be a positive number, got ${s}`);
  return n;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'receivers-scale': { type: 'string' },
      'scale-steps': { type: 'string' },
      'edge-viewers': { type: 'string' },
      'idle-receivers': { type: 'string' },
      'server-cmd': { type: 'string' },
      'server-workers': { type: 'string' },
      workers: { type: 'string' },
      'source-addrs': { type: 'string' },
      'connect-concurrency': { type: 'string' },
      key: { type: 'string' },
      'skip-verify': { type: 'boolean' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      'max-minutes': { type: 'string' },
      repeat: { type: 'string' },
      'quiet-wait': { type: 'string' },
      host: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }

  const asked = values.scenario ? list(values.scenario) : [...ALL_SCENARIOS, 'edge'];
  // The edge scenario runs three servers and its own workers (bench/edge.ts).
  const withEdge = asked.includes('edge');
  const selected = asked.filter((id) => id !== 'edge');
  for (const id of selected) if (!ALL_SCENARIOS.includes(id as ScenarioId)) throw new Error(`unknown scenario '${id}' (have ${ALL_SCENARIOS.join(',')},edge)`);
  const edgeViewers = list(values['edge-viewers'] ?? '100,1000').map((x) => Math.floor(positive('edge-viewers', x, 1)));
  const host = values.host ?? '127.0.0.1';
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) throw new Error('--host must be a loopback address');
  const sourceCount = Math.min(250, Math.floor(positive('source-addrs', values['source-addrs'], 4)));
  const scaleSteps = list(values['scale-steps'] ?? '1000,2000,4000,6000').map((x) => Math.floor(positive('scale-steps', x, 1)));
  const specs = scenarioSpecs(positive('receivers-scale', values['receivers-scale'], 1), scaleSteps, Math.floor(positive('idle-receivers', values['idle-receivers'], 10_000)));
  const serverWorkers = values['server-workers'] === undefined ? [undefined] : parseServerWorkers(values['server-workers']);
  const maxMinutes = positive('max-minutes', values['max-minutes'], 30);
  const repeat = Math.floor(positive('repeat', values.repeat, 1));

  const node = shellQuote(process.execPath);
  const serverCommand =
    values['server-cmd'] ??
    `${node} bin/ws-stream-server.js --http-port {port} --bind-address ${host} --log-requests NO --max-ip-concurrent-connections 0 --gop-cache-size-mb 0 --admin-address off`;
  const tcpCommand = `${node} ${shellQuote(TCP_RELAY)} --port {port} --host ${host}`;

  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const machine = machineInfo();
  const biggest = Math.max(withEdge ? Math.max(...edgeViewers) : 0, ...selected.map((id) => {
    const s = specs[id as ScenarioId];
    return s.kind === 'stream' || s.kind === 'idle' ? s.receivers : s.kind === 'scale' ? Math.max(...s.steps) : s.kind === 'publishers' ? s.publishers : 0;
  }));
  if (machine.openFilesSoftLimit !== null && machine.openFilesSoftLimit < biggest + 200) {
    log(`warning: ulimit -n is ${machine.openFilesSoftLimit}, below the ${biggest + 200} descriptors the server needs; raise it (ulimit -n ${biggest + 1000})`);
  }

  // Hard stop for the whole run; server trees die with us (see server-process.ts).
  const guard = setTimeout(() => {
    log(`bench exceeded --max-minutes ${maxMinutes}; aborting`);
    process.exit(2);
  }, maxMinutes * 60_000);
  guard.unref();

  const pool = new WorkerPool(Math.floor(positive('workers', values.workers, 2)));
  const ctx: RunContext = {
    pool,
    host,
    serverCommand,
    tcpCommand,
    cwd: ROOT,
    key: values.key ?? 'bench',
    durationS: positive('duration', values.duration, 10),
    warmupS: values.warmup === undefined ? 1 : Number(values.warmup),
    verify: !values['skip-verify'],
    sourceAddrs: host === '127.0.0.1' ? Array.from({ length: sourceCount }, (_, i) => `127.0.0.${i + 1}`) : [host],
    connectConcurrency: Math.floor(positive('connect-concurrency', values['connect-concurrency'], 256)),
    quietWaitS: values['quiet-wait'] === undefined ? 60 : Math.max(0, Number(values['quiet-wait']) || 0),
    serverEnv: {},
    tls: null,
    log,
  };
  // wss scenarios: a self-signed certificate made now, removed at the end.
  const tlsDir = selected.some((id) => usesTls(specs[id as ScenarioId])) ? mkdtempSync(join(tmpdir(), 'ws-bench-tls-')) : null;

  const startedAt = new Date();
  const results: ScenarioResult[] = [];
  let edge: EdgeRunResult[] = [];
  try {
    if (tlsDir !== null) ctx.tls = await makeSelfSignedCertificate(tlsDir, 'bench');
    // Repetitions interleave the whole list, so c and d stay side by side under the same load;
    // worker counts run back to back per scenario, so they compare under the same conditions.
    for (let rep = 1; rep <= repeat; rep++) {
      for (const id of selected) {
        const spec = specs[id as ScenarioId];
        for (const workers of usesServer(spec) ? serverWorkers : [undefined]) {
          log(`[${id}${workers === undefined ? '' : ` WORKERS=${workers}`}${repeat > 1 ? ` #${rep}` : ''}] ${spec.title}`);
          const r = await runScenario({ ...ctx, serverEnv: workers === undefined ? {} : { WORKERS: workers } }, spec);
          r.rep = rep;
          if (workers !== undefined) r.serverWorkers = workers;
          if (r.error) log(`  error: ${r.error}`);
          results.push(r);
        }
      }
      if (withEdge) {
        log(`[edge${repeat > 1 ? ` #${rep}` : ''}] origin + two edges, viewers ${edgeViewers.join(', ')}`);
        edge = [...edge, ...(await runEdgeScenario(ctx, edgeViewers))];
      }
    }
  } finally {
    await pool.close();
    if (tlsDir !== null) rmSync(tlsDir, { recursive: true, force: true });
  }

  const targets = evaluateTargets(results);
  const doc = {
    date: startedAt.toISOString(),
    machine,
    options: { scenarios: selected, serverWorkers: serverWorkers.filter((w) => w !== undefined), repeat, durationS: ctx.durationS, warmupS: ctx.warmupS, workers: pool.size, verify: ctx.verify, sourceAddrs: ctx.sourceAddrs.length, serverCommand, tcpCommand },
    results,
    targets,
    edge,
  };
  if (values.out) writeFileSync(values.out, `${JSON.stringify(doc, null, 2)}\n`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    const m = machine;
    const out = [
      `ws-stream-server bench ${startedAt.toISOString()} — ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}`,
      `server: ${serverCommand}`,
      '',
      formatTable(results),
      '',
      ...formatWorkers(results, machine.cpus),
      'Targets:',
      ...targets.map((t) => `  [${t.verdict}] ${t.target}: ${t.detail}`),
      '',
      'Notes:',
      ...formatNotes(results).map((n) => `  ${n}`),
      ...(withEdge ? ['', ...formatEdge(edge)] : []),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  }
  return results.some((r) => r.error) || edge.some((r) => r.error !== undefined) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).message ?? String(err)}\n\n${USAGE}`);
    process.exit(2);
  },
);
