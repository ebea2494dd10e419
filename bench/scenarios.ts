/**
 * Scenario definitions and the code that runs one: start the server under
 * test, connect receivers in the workers, publish, collect, tear down.
 * Every phase has a time bound; each scenario gets a fresh server process and
 * fresh channels so no state (or cached chunk) leaks between scenarios.
 * A stream scenario has one or more channels, each with its own paced
 * publisher (in this process) and its share of the receivers (in the workers).
 */
import { randomInt } from 'node:crypto';
import { Histogram } from './histogram.js';
import type { ConnectedReply, StatsReply, TeardownReply, Transport } from './ipc.js';
import { runManyPublishers } from './many-publishers.js';
import type { ManyPublishersRun, ManyPublishersSpec } from './many-publishers.js';
import { measureParseCost } from './parse-cost.js';
import type { ParseCostCase } from './parse-cost.js';
import type { WorkerPool } from './pool.js';
import type { CertificateFiles } from './certificate.js';
import { cpuPercent, machineBusySeconds, ProcSampler, sampleThreads, threadUsage, type ThreadUsage } from './proc-sampler.js';
import { Publisher, type Pace, type PublishResult } from './publisher.js';
import { freePort, sleep, startServer, type ServerHandle } from './server-process.js';

/**
 * `*-tcp` are plain-TCP twins of a, b and scale: the machine's own ceiling for their latencies.
 * `a-wss` is (a) over TLS; `channels` and `mid` spread the load over many channels.
 */
export type ScenarioId = 'a' | 'a-tcp' | 'a-wss' | 'b' | 'b-tcp' | 'c' | 'd' | 'e' | 'f' | 'g' | 'channels' | 'mid' | 'memory' | 'scale' | 'scale-tcp';
export const ALL_SCENARIOS: ScenarioId[] = ['a', 'a-tcp', 'a-wss', 'b', 'b-tcp', 'c', 'd', 'e', 'f', 'g', 'channels', 'mid', 'memory', 'scale', 'scale-tcp'];

interface StreamSpec {
  kind: 'stream';
  transport: Transport;
  /** wss: the server listens with TLS only, receivers and publishers connect with TLS. */
  tls: boolean;
  /** Channels, each with one publisher; receiver i is on channel i mod channels. */
  channels: number;
  /** All receivers, over all channels. */
  receivers: number;
  pace: Pace;
  messageBytes: number;
  pausedReceivers: number;
}

export type ScenarioSpec =
  | (StreamSpec & { id: ScenarioId; title: string })
  | { id: ScenarioId; title: string; kind: 'idle'; receivers: number }
  | { id: ScenarioId; title: string; kind: 'scale'; transport: Transport; steps: number[]; bitsPerSecond: number; messageBytes: number; p99LimitMs: number }
  | { id: ScenarioId; title: string; kind: 'parse' }
  | (ManyPublishersSpec & { id: ScenarioId; title: string; kind: 'publishers' });

const MBIT = 1_000_000;
const KIB = 1024;
/** How far (c) and (d) may run ahead of their slowest receiver: about what the TCP relay buffers. */
const SATURATE_WINDOW = 8 * 1024 * KIB;
/** The server-wide cache limit (memory) compares with no limit: well below what 300 × 2 Mbit/s fill in 10 s. */
const MEMORY_LIMIT_MB = 256;

/**
 * The issue's scenarios. `scale` multiplies the built-in receiver counts of a-f for quick
 * runs; explicit idle-receiver and scale-step counts are used as given.
 */
export function scenarioSpecs(scale: number, scaleSteps: number[], idleReceivers: number): Record<ScenarioId, ScenarioSpec> {
  const n = (x: number): number => Math.max(1, Math.round(x * scale));
  const one = { kind: 'stream', tls: false, channels: 1 } as const;
  const a = { ...one, receivers: n(200), pace: { kind: 'paced', bitsPerSecond: 4 * MBIT }, messageBytes: 64 * KIB, pausedReceivers: 0 } as const;
  const b = { ...one, receivers: n(1000), pace: { kind: 'paced', bitsPerSecond: 2 * MBIT }, messageBytes: 32 * KIB, pausedReceivers: 0 } as const;
  const twoMbit = { kind: 'stream', transport: 'ws', tls: false, pace: { kind: 'paced', bitsPerSecond: 2 * MBIT }, messageBytes: 32 * KIB, pausedReceivers: 0 } as const;
  const midPerChannel = n(50);
  const search = { kind: 'scale', steps: scaleSteps, bitsPerSecond: 2 * MBIT, messageBytes: 32 * KIB, p99LimitMs: 50 } as const;
  return {
    a: { id: 'a', title: `${n(200)} receivers x 4 Mbit/s, 64 KiB`, transport: 'ws', ...a },
    'a-tcp': { id: 'a-tcp', title: `plain-TCP twin of (a)`, transport: 'tcp', ...a },
    'a-wss': { id: 'a-wss', title: `(a) over wss (TLS)`, transport: 'ws', ...a, tls: true },
    b: { id: 'b', title: `${n(1000)} receivers x 2 Mbit/s, 32 KiB`, transport: 'ws', ...b },
    'b-tcp': { id: 'b-tcp', title: `plain-TCP twin of (b)`, transport: 'tcp', ...b },
    c: { id: 'c', title: `saturate, ${n(50)} receivers, 64 KiB`, ...one, transport: 'ws', receivers: n(50), pace: { kind: 'saturate', windowBytes: SATURATE_WINDOW }, messageBytes: 64 * KIB, pausedReceivers: 0 },
    d: { id: 'd', title: `plain-TCP baseline, saturate, ${n(50)} readers, 64 KiB`, ...one, transport: 'tcp', receivers: n(50), pace: { kind: 'saturate', windowBytes: SATURATE_WINDOW }, messageBytes: 64 * KIB, pausedReceivers: 0 },
    e: { id: 'e', title: `${idleReceivers} idle receivers (RSS per receiver)`, kind: 'idle', receivers: idleReceivers },
    f: { id: 'f', title: `(a) with 1 of ${n(200)} receivers paused`, ...one, transport: 'ws', receivers: n(200), pace: { kind: 'paced', bitsPerSecond: 4 * MBIT }, messageBytes: 64 * KIB, pausedReceivers: 1 },
    g: { id: 'g', title: 'GOP-cache parsing cost: WebM and FLV at 4 and 20 Mbit/s vs opaque', kind: 'parse' },
    channels: { id: 'channels', title: `${n(300)} channels x 2 Mbit/s, 32 KiB, 1 publisher + 1 receiver each`, ...twoMbit, channels: n(300), receivers: n(300) },
    mid: { id: 'mid', title: `20 channels x ${midPerChannel} receivers x 2 Mbit/s, 32 KiB`, ...twoMbit, channels: 20, receivers: 20 * midPerChannel },
    memory: {
      id: 'memory',
      title: `${n(300)} opaque publishers x 2 Mbit/s, no receivers: CACHE_MEMORY_LIMIT_MB 0 vs ${MEMORY_LIMIT_MB}`,
      kind: 'publishers',
      publishers: n(300),
      bitsPerSecond: 2 * MBIT,
      messageBytes: 32 * KIB,
      limitsMb: [0, MEMORY_LIMIT_MB],
    },
    scale: { id: 'scale', title: 'largest receiver count at 2 Mbit/s, 32 KiB with zero loss and p99 < 50 ms', transport: 'ws', ...search },
    'scale-tcp': { id: 'scale-tcp', title: 'plain-TCP twin of the scale search', transport: 'tcp', ...search },
  };
}

/** Scenarios whose figures depend on the WebSocket server under test (not the TCP relay, not g). */
export function usesServer(spec: ScenarioSpec): boolean {
  if (spec.kind === 'parse') return false;
  if (spec.kind === 'stream' || spec.kind === 'scale') return spec.transport === 'ws';
  return true;
}

/** Scenarios that need the TLS certificate. */
export function usesTls(spec: ScenarioSpec): boolean {
  return spec.kind === 'stream' && spec.tls;
}

export interface RunContext {
  pool: WorkerPool;
  host: string;
  /** Shell command (with {port}) of the WebSocket server under test. */
  serverCommand: string;
  /** Shell command (with {port}) of the plain-TCP relay. */
  tcpCommand: string;
  cwd: string;
  key: string;
  durationS: number;
  warmupS: number;
  verify: boolean;
  sourceAddrs: string[];
  connectConcurrency: number;
  /** Longest wait, before each scenario, for the machine to be quiet (busy < 25% of a core). */
  quietWaitS: number;
  /** Extra environment of the WebSocket server under test (e.g. WORKERS). */
  serverEnv: Record<string, string>;
  /** Certificate for the wss scenarios (made at bench start; null when none runs). */
  tls: CertificateFiles | null;
  log: (line: string) => void;
}

/** CPU (in % of one core) the machine used over the last second, everything included. */
async function machineBusyPercent(): Promise<number> {
  const a = machineBusySeconds();
  await sleep(1000);
  return 100 * (machineBusySeconds() - a);
}

/**
 * Waits (bounded) until other work on the machine calms down, so it does not steal the
 * cores from the server and the generator. Returns the last busy reading.
 */
export async function waitForQuiet(ctx: RunContext): Promise<number> {
  const deadline = performance.now() + ctx.quietWaitS * 1000;
  let busy = await machineBusyPercent();
  while (busy > QUIET_BUSY_PERCENT && performance.now() < deadline) {
    ctx.log(`  machine busy (${busy.toFixed(0)}% of a core used by other work); waiting`);
    await sleep(2000);
    busy = await machineBusyPercent();
  }
  return busy;
}

const QUIET_BUSY_PERCENT = 25;

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface StreamResult {
  receiversRequested: number;
  receiversConnected: number;
  connectFailed: number;
  firstConnectError: string | null;
  connectMs: number;
  windowS: number;
  published: { messages: number; mbps: number; lateSends: number; maxBacklogBytes: number; closedByServer: boolean; serverTexts: string[] };
  deliveredMbps: number;
  perReceiverMbps: number;
  latencyMs: LatencySummary;
  loss: { missing: number; expected: number; ratio: number; outOfOrder: number; bad: StatsReply['bad']; protocolErrors: number; closedEarly: Record<string, number>; drained: boolean };
  receiverTexts: Record<string, number>;
  teardown: { closedByServer: number; closeCodes: Record<string, number>; stillOpen: number; paused: TeardownReply['paused'] };
}

export interface ServerUsage {
  cpuPercent: number;
  /** Per-thread CPU of the server over the measurement window (stream scenarios). */
  threads?: ThreadUsage;
  /** CPU used by everything else on the machine (not server, not generator) in the window. */
  otherCpuPercent?: number;
  peakRssMb: number;
  rssBeforeMb: number;
  rssEndMb: number;
}

export interface ScenarioResult {
  id: ScenarioId;
  /** Repetition (1-based) when the run repeats the scenario list. */
  rep: number;
  /** WORKERS given to the server (--server-workers: an integer or 'auto'); absent when not set. */
  serverWorkers?: string;
  title: string;
  kind: ScenarioSpec['kind'];
  transport: Transport | null;
  server: ServerUsage | null;
  generatorCpuPercent: number | null;
  stream?: StreamResult;
  idle?: { receiversConnected: number; connectFailed: number; firstConnectError: string | null; connectMs: number; rssPerReceiverKb: number; rssBeforeMb: number; rssAfterMb: number };
  scale?: { steps: Array<{ receivers: number; pass: boolean; why: string; p99Ms: number; missing: number }>; best: number | null };
  parse?: ParseCostCase[];
  publishers?: ManyPublishersRun[];
  error?: string;
  notes: string[];
}

/** Splits `total` receivers across workers as evenly as possible. */
export function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

const mb = (kb: number): number => kb / 1024;

/**
 * The server command and environment of a run. wss: the command's {port} becomes 0 (plain
 * listener off) and the TLS listener gets the port through SSL_PORT, with SSL_CERT/SSL_KEY.
 */
export function serverLaunch(ctx: Pick<RunContext, 'serverCommand' | 'tcpCommand' | 'serverEnv' | 'tls'>, transport: Transport, tls: boolean, port: number): { command: string; env: Record<string, string> } {
  if (transport === 'tcp') return { command: ctx.tcpCommand, env: {} };
  if (!tls) return { command: ctx.serverCommand, env: { ...ctx.serverEnv } };
  if (ctx.tls === null) throw new Error('wss scenario without a certificate');
  return {
    command: ctx.serverCommand.replaceAll('{port}', '0'),
    env: { ...ctx.serverEnv, HTTP_PORT: '0', SSL_PORT: String(port), SSL_CERT: ctx.tls.certFile, SSL_KEY: ctx.tls.keyFile },
  };
}

async function withServer<T>(ctx: RunContext, transport: Transport, tls: boolean, lifetimeS: number, body: (server: ServerHandle, sampler: ProcSampler) => Promise<T>): Promise<T> {
  const port = await freePort(ctx.host);
  const server = await startServer({
    ...serverLaunch(ctx, transport, tls, port),
    port,
    host: ctx.host,
    cwd: ctx.cwd,
    lifetimeSeconds: lifetimeS,
    readyTimeoutMs: 20_000,
  });
  const sampler = new ProcSampler(server.pid, true);
  try {
    await sleep(300); // let the server finish start-up allocations before the RSS baseline
    sampler.sample();
    sampler.start();
    return await body(server, sampler);
  } finally {
    sampler.stop();
    await server.stop();
  }
}

interface ReceiverTarget {
  transport: Transport;
  tls: boolean;
  port: number;
  /** May hold `{channel}` (see ConnectCommand). */
  path: string;
  channels: number;
}

async function connectReceivers(ctx: RunContext, target: ReceiverTarget, count: number, paused: number, messageBytes: number, runId: number): Promise<{ replies: ConnectedReply[]; wallMs: number }> {
  const counts = split(count, ctx.pool.size);
  const started = performance.now();
  let base = 0;
  counts.forEach((c, i) => {
    ctx.pool.send(i, {
      type: 'connect',
      transport: target.transport,
      tls: target.tls,
      host: ctx.host,
      port: target.port,
      path: target.path,
      channels: target.channels,
      count: c,
      indexBase: base,
      sourceAddrs: ctx.sourceAddrs,
      paused: i === 0 ? Array.from({ length: Math.min(paused, c) }, (_, k) => k) : [],
      messageBytes,
      runId,
      verify: ctx.verify,
      concurrency: ctx.connectConcurrency,
      timeoutMs: 15_000,
    });
    base += c;
  });
  const replies = await ctx.pool.all('connected', 30_000 + count * 20);
  return { replies, wallMs: performance.now() - started };
}

function summarize(h: Histogram): LatencySummary {
  const ms = (us: number): number => us / 1000;
  return { count: h.count, p50: ms(h.percentile(50)), p90: ms(h.percentile(90)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) };
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Publishers connected per batch (many channels: don't open hundreds of handshakes at once). */
const PUBLISHER_BATCH = 50;

/** One publisher per channel; a failed connect fails the scenario (its channel would count as lost). */
async function connectPublishers(ctx: RunContext, spec: StreamSpec, port: number, channelName: (index: number) => string, runId: number): Promise<Publisher[]> {
  const publishers: Publisher[] = [];
  try {
    for (let i = 0; i < spec.channels; i += PUBLISHER_BATCH) {
      const batch = Array.from({ length: Math.min(PUBLISHER_BATCH, spec.channels - i) }, (_, k) =>
        Publisher.connect({ transport: spec.transport, tls: spec.tls, host: ctx.host, port, path: `/${channelName(i + k)}/${ctx.key}/publish`, messageBytes: spec.messageBytes, runId, timeoutMs: 15_000 }),
      );
      const settled = await Promise.allSettled(batch);
      for (const r of settled) if (r.status === 'fulfilled') publishers.push(r.value);
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed) throw new Error(`publisher connect failed: ${(failed.reason as Error).message}`);
    }
    return publishers;
  } catch (err) {
    await Promise.all(publishers.map((p) => p.close()));
    throw err;
  }
}

/**
 * Runs every channel's publisher for durationMs. Paced publishers of several channels start
 * spread over one send interval, like independent streams, instead of all in the same
 * millisecond; all stop at the same time.
 */
async function publishAll(ctx: RunContext, spec: StreamSpec, publishers: Publisher[], durationMs: number, fromNs: bigint): Promise<PublishResult[]> {
  const intervalMs = spec.pace.kind === 'paced' ? (spec.messageBytes * 8 * 1000) / spec.pace.bitsPerSecond : 0;
  return Promise.all(
    publishers.map(async (pub, i) => {
      const offsetMs = (i * intervalMs) / publishers.length;
      if (offsetMs > 0) await sleep(offsetMs);
      return pub.run(spec.pace, durationMs - offsetMs, fromNs, () => ctx.pool.minProgress());
    }),
  );
}

/** What all publishers of a run sent, as one stream: the measured window spans all of them. */
export function combinePublished(results: PublishResult[], messageBytes: number): { sent: number; measuredSent: number; windowS: number; mbps: number; lateSends: number; maxBacklogBytes: number; closedByServer: boolean; serverTexts: string[] } {
  const sent = results.reduce((a, r) => a + r.sent, 0);
  const measuredSent = results.reduce((a, r) => a + r.measuredSent, 0);
  const measured = results.filter((r) => r.measuredSent > 0);
  // Each publisher's messages span first..last send plus one send interval; interleaved
  // publishers (see publishAll) together send one message every interval / publishers.
  // Using their own timestamps avoids a +-1 message bias at low message rates.
  const first = results[0];
  const intervalS = first && first.sent > 1 ? Number(first.lastSendNs - first.firstSendNs) / 1e9 / (first.sent - 1) : 0;
  const firstMeasured = measured.reduce((m, r) => (r.firstMeasuredNs < m ? r.firstMeasuredNs : m), measured[0]?.firstMeasuredNs ?? 0n);
  const lastSend = measured.reduce((m, r) => (r.lastSendNs > m ? r.lastSendNs : m), 0n);
  const windowS = Math.max(1e-3, Number(lastSend - firstMeasured) / 1e9 + intervalS / Math.max(1, results.length));
  return {
    sent,
    measuredSent,
    windowS,
    mbps: (measuredSent * messageBytes * 8) / windowS / 1e6,
    lateSends: results.reduce((a, r) => a + r.lateSends, 0),
    maxBacklogBytes: Math.max(0, ...results.map((r) => r.maxBacklogBytes)),
    closedByServer: results.some((r) => r.closedByServer),
    serverTexts: results.flatMap((r) => r.serverTexts).slice(0, 20),
  };
}

/** Threads kept in a result (busiest first): enough to see how the work was spread. */
const THREADS_REPORTED = 8;

export async function runStream(ctx: RunContext, spec: StreamSpec): Promise<{ stream: StreamResult; server: ServerUsage; generatorCpuPercent: number }> {
  const lifetime = ctx.durationS + 120 + spec.receivers / 50 + spec.channels / 20;
  return withServer(ctx, spec.transport, spec.tls, lifetime, async (server, sampler) => {
    const runId = randomInt(1, 2 ** 31);
    // One channel keeps its old name (bench<run>); several are bench<run>-<i>.
    const channelName = (index: number | '{channel}'): string => (spec.channels === 1 ? `bench${runId}` : `bench${runId}-${index}`);
    const rssBeforeKb = sampler.last?.rssKb ?? 0;
    ctx.log(`  connecting ${spec.receivers} receivers${spec.channels > 1 ? ` over ${spec.channels} channels` : ''}`);
    const conn = await connectReceivers(ctx, { transport: spec.transport, tls: spec.tls, port: server.port, path: `/${channelName('{channel}')}/${ctx.key}/receive`, channels: spec.channels }, spec.receivers, spec.pausedReceivers, spec.messageBytes, runId);
    const connected = conn.replies.reduce((s, r) => s + r.ok, 0);
    const failed = conn.replies.reduce((s, r) => s + r.failed, 0);
    ctx.log(`  ${connected} connected (${failed} failed) in ${conn.wallMs.toFixed(0)} ms; publishing${spec.channels > 1 ? ` on ${spec.channels} channels` : ''} for ${ctx.durationS} s`);

    const pubs = await connectPublishers(ctx, spec, server.port, channelName, runId);
    // Measurement starts after the warm-up; 'measure' carries a timestamp slightly in the
    // future so it reaches the workers before the first message it covers.
    const warmupMs = ctx.warmupS * 1000;
    const fromNs = process.hrtime.bigint() + BigInt(Math.round((warmupMs + 50) * 1e6));
    let s1 = sampler.sample();
    let t1 = sampleThreads(s1.pids);
    let cpu1 = process.cpuUsage();
    let busy1 = machineBusySeconds();
    const measureTimer = setTimeout(() => {
      ctx.pool.broadcast({ type: 'measure', fromNs: fromNs.toString() });
      setTimeout(() => {
        s1 = sampler.sample();
        t1 = sampleThreads(s1.pids);
        cpu1 = process.cpuUsage();
        busy1 = machineBusySeconds();
      }, 50);
    }, warmupMs);
    let results: PublishResult[];
    try {
      results = await publishAll(ctx, spec, pubs, (ctx.durationS + ctx.warmupS) * 1000, fromNs);
    } finally {
      clearTimeout(measureTimer);
    }
    const s2 = sampler.sample();
    const t2 = sampleThreads(s2.pids);
    const parentCpu = process.cpuUsage(cpu1);
    const busy2 = machineBusySeconds();
    await Promise.all(pubs.map((p) => p.flush(5000)));

    const perChannel = results.map((r) => r.sent);
    ctx.pool.broadcast({ type: 'finish', published: perChannel[0] ?? 0, ...(spec.channels > 1 ? { publishedPerChannel: perChannel } : {}), drainTimeoutMs: 10_000 });
    const stats = await ctx.pool.all('stats', 20_000);
    await Promise.all(pubs.map((p) => p.close()));
    ctx.pool.broadcast({ type: 'teardown', waitCloseMs: 3000 });
    const closed = await ctx.pool.all('closed', 10_000);
    const rssEndKb = sampler.sample().rssKb;

    const hist = new Histogram();
    for (const s of stats) hist.merge(s.histogram);
    const published = combinePublished(results, spec.messageBytes);
    const windowS = published.windowS;
    const measuredBytes = stats.reduce((a, s) => a + s.measuredBytes, 0);
    const readers = stats.reduce((a, s) => a + s.receivers, 0);
    const missing = stats.reduce((a, s) => a + s.missing, 0);
    const expected = stats.reduce((a, s) => a + s.expected, 0);
    const closedEarly: Record<string, number> = {};
    const receiverTexts: Record<string, number> = {};
    const closeCodes: Record<string, number> = {};
    const bad = { short: 0, foreign: 0, length: 0, corrupt: 0 };
    for (const s of stats) {
      addCounts(closedEarly, s.closedEarly);
      addCounts(receiverTexts, s.errorTexts);
      for (const k of Object.keys(bad) as Array<keyof typeof bad>) bad[k] += s.bad[k];
    }
    for (const c of closed) addCounts(closeCodes, c.closeCodes);
    const workerCpuUs = stats.reduce((a, s) => a + s.cpuUs, 0);
    const wallS = (s2.atMs - s1.atMs) / 1000;

    const stream: StreamResult = {
      receiversRequested: spec.receivers,
      receiversConnected: connected,
      connectFailed: failed,
      firstConnectError: conn.replies.find((r) => r.firstError)?.firstError ?? null,
      connectMs: conn.wallMs,
      windowS,
      published: {
        messages: published.sent,
        mbps: published.mbps,
        lateSends: published.lateSends,
        maxBacklogBytes: published.maxBacklogBytes,
        closedByServer: published.closedByServer,
        serverTexts: published.serverTexts,
      },
      deliveredMbps: (measuredBytes * 8) / windowS / 1e6,
      perReceiverMbps: readers > 0 ? (measuredBytes * 8) / windowS / 1e6 / readers : 0,
      latencyMs: summarize(hist),
      loss: {
        missing,
        expected,
        ratio: expected > 0 ? missing / expected : 0,
        outOfOrder: stats.reduce((a, s) => a + s.outOfOrder, 0),
        bad,
        protocolErrors: stats.reduce((a, s) => a + s.protocolErrors, 0),
        closedEarly,
        drained: stats.every((s) => s.drained),
      },
      receiverTexts,
      teardown: {
        closedByServer: closed.reduce((a, c) => a + c.closedByServer, 0),
        closeCodes,
        stillOpen: closed.reduce((a, c) => a + c.stillOpen, 0),
        paused: closed.flatMap((c) => c.paused),
      },
    };
    const serverCpu = cpuPercent(s1, s2);
    const generatorCpu = wallS > 0 ? (100 * ((parentCpu.user + parentCpu.system + workerCpuUs) / 1e6)) / wallS : 0;
    const machineCpu = wallS > 0 ? (100 * (busy2 - busy1)) / wallS : 0;
    const threads = threadUsage(t1, t2, wallS);
    return {
      stream,
      server: {
        cpuPercent: serverCpu,
        threads: { ...threads, threads: threads.threads.slice(0, THREADS_REPORTED) },
        otherCpuPercent: Math.max(0, machineCpu - serverCpu - generatorCpu),
        peakRssMb: mb(sampler.peakKb),
        rssBeforeMb: mb(rssBeforeKb),
        rssEndMb: mb(rssEndKb),
      },
      generatorCpuPercent: generatorCpu,
    };
  });
}

async function runIdle(ctx: RunContext, receivers: number): Promise<Pick<ScenarioResult, 'idle' | 'server' | 'generatorCpuPercent'>> {
  return withServer(ctx, 'ws', false, 180 + receivers / 50, async (server, sampler) => {
    const runId = randomInt(1, 2 ** 31);
    const before = sampler.sample();
    const cpu0 = process.cpuUsage();
    ctx.log(`  connecting ${receivers} idle receivers`);
    const conn = await connectReceivers(ctx, { transport: 'ws', tls: false, port: server.port, path: `/idle${runId}/${ctx.key}/receive`, channels: 1 }, receivers, 0, 64, runId);
    await sleep(2000); // let the server settle (lazy allocations, GC) before reading RSS
    const after = sampler.sample();
    const connected = conn.replies.reduce((s, r) => s + r.ok, 0);
    const wallS = (after.atMs - before.atMs) / 1000;
    const parent = process.cpuUsage(cpu0);
    ctx.pool.broadcast({ type: 'teardown', waitCloseMs: 0 });
    await ctx.pool.all('closed', 20_000);
    return {
      idle: {
        receiversConnected: connected,
        connectFailed: conn.replies.reduce((s, r) => s + r.failed, 0),
        firstConnectError: conn.replies.find((r) => r.firstError)?.firstError ?? null,
        connectMs: conn.wallMs,
        rssPerReceiverKb: connected > 0 ? (after.rssKb - before.rssKb) / connected : NaN,
        rssBeforeMb: mb(before.rssKb),
        rssAfterMb: mb(after.rssKb),
      },
      server: { cpuPercent: cpuPercent(before, after), peakRssMb: mb(sampler.peakKb), rssBeforeMb: mb(before.rssKb), rssEndMb: mb(after.rssKb) },
      // Worker CPU is not windowed here; the parent's share is negligible while connecting.
      generatorCpuPercent: wallS > 0 ? (100 * ((parent.user + parent.system) / 1e6)) / wallS : null,
    };
  });
}

export async function runScenario(ctx: RunContext, spec: ScenarioSpec): Promise<ScenarioResult> {
  const base: ScenarioResult = { id: spec.id, rep: 1, title: spec.title, kind: spec.kind, transport: null, server: null, generatorCpuPercent: null, notes: [] };
  try {
    if (ctx.quietWaitS > 0) await waitForQuiet(ctx);
    switch (spec.kind) {
      case 'parse':
        return { ...base, parse: await measureParseCost(ctx.log) };
      case 'publishers': {
        const { runs, notes } = await runManyPublishers(ctx, spec);
        return { ...base, transport: 'ws', publishers: runs, notes };
      }
      case 'stream': {
        const r = await runStream(ctx, spec);
        return { ...base, transport: spec.transport, ...r };
      }
      case 'idle':
        return { ...base, transport: 'ws', ...(await runIdle(ctx, spec.receivers)) };
      case 'scale': {
        const steps: NonNullable<ScenarioResult['scale']>['steps'] = [];
        let best: number | null = null;
        for (const receivers of spec.steps) {
          ctx.log(` scale step: ${receivers} receivers`);
          const r = await runStream(ctx, { kind: 'stream', transport: spec.transport, tls: false, channels: 1, receivers, pace: { kind: 'paced', bitsPerSecond: spec.bitsPerSecond }, messageBytes: spec.messageBytes, pausedReceivers: 0 });
          const s = r.stream;
          const why: string[] = [];
          if (s.receiversConnected < receivers) why.push(`${receivers - s.receiversConnected} failed to connect`);
          if (s.loss.missing > 0) why.push(`${s.loss.missing} messages lost`);
          if (s.loss.outOfOrder > 0) why.push(`${s.loss.outOfOrder} out of order`);
          if (!(s.latencyMs.p99 < spec.p99LimitMs)) why.push(`p99 ${s.latencyMs.p99.toFixed(1)} ms`);
          const pass = why.length === 0;
          steps.push({ receivers, pass, why: pass ? 'ok' : why.join(', '), p99Ms: s.latencyMs.p99, missing: s.loss.missing });
          base.server = r.server;
          base.generatorCpuPercent = r.generatorCpuPercent;
          if (!pass) break; // larger counts will not do better
          best = receivers;
        }
        return { ...base, transport: spec.transport, scale: { steps, best } };
      }
    }
  } catch (err) {
    // Leave no receivers of a failed scenario behind for the next one.
    ctx.pool.broadcast({ type: 'teardown', waitCloseMs: 0 });
    await ctx.pool.all('closed', 10_000).catch(() => undefined);
    ctx.pool.clearInbox();
    return { ...base, error: (err as Error).message };
  }
}
