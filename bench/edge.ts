/**
 * The edge scenario (`--scenario edge`): one origin, two edge servers pulling from it, viewers
 * spread over the two edges. For each viewer count N, two runs:
 *
 * - cost: N viewers over the edges and 2 viewers on the origin directly. The origin's bytes out
 *   and CPU must not depend on N (it sees each edge as one receiver); a reference run (origin
 *   alone with 4 direct receivers) gives its cost for that many receivers.
 * - hop: N viewers over the edges and N/2 on the origin directly, in the same run, each group
 *   in its own receiver worker, so every worker and every fan-out has the same load: p99 of the
 *   edge viewers minus p99 of the direct viewers is what the edge hop adds.
 */
import { randomInt } from 'node:crypto';
import { Histogram } from './histogram.js';
import type { StatsReply } from './ipc.js';
import { WorkerPool } from './pool.js';
import { cpuPercent, machineBusySeconds, ProcSampler } from './proc-sampler.js';
import { Publisher } from './publisher.js';
import { waitForQuiet, type RunContext } from './scenarios.js';
import { freePort, sleep, startServer, type ServerHandle } from './server-process.js';

const MBIT = 1_000_000;
const KIB = 1024;
/** Same stream as scenario b: 2 Mbit/s in 32 KiB messages. */
const BITS_PER_SECOND = 2 * MBIT;
const MESSAGE_BYTES = 32 * KIB;
/** Viewers connected to the origin directly, for the latency comparison. */
export const DIRECT_VIEWERS = 2;

export interface EdgeRunResult {
  kind: 'reference' | 'cost' | 'hop';
  /** Viewers on the edges (split over two), 0 for the reference run. */
  edgeViewers: number;
  directViewers: number;
  /** Receivers the origin had during the run, as its admin API counted them. */
  originReceivers: number;
  connectFailed: number;
  windowS: number;
  publishedMbps: number;
  /** Stream bytes the origin sent, per second, over the measured window. */
  originOutMbps: number;
  /** originOut / published: how many receivers' worth the origin served. */
  originOutReceivers: number;
  originCpuPercent: number;
  originRssMb: number;
  /** CPU of each edge process. */
  edgeCpuPercent: number[];
  edgeLatencyMs: { p50: number; p99: number; max: number; count: number } | null;
  directLatencyMs: { p50: number; p99: number; max: number; count: number };
  /** p99 edge − p99 direct. */
  hopP99Ms: number | null;
  missing: number;
  /** CPU used in the window by everything else on the machine (not the servers, not the generator). */
  otherCpuPercent: number;
  error?: string;
}

function summary(h: Histogram): { p50: number; p99: number; max: number; count: number } {
  return { p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000, max: h.max / 1000, count: h.count };
}

async function admin(port: number, path: string): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return response.json();
}

async function originBytesOut(adminPort: number): Promise<number> {
  const server = (await admin(adminPort, '/api/v1/server')) as { traffic: { bytesOut: number } };
  return server.traffic.bytesOut;
}

async function receiversOf(adminPort: number, channel: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/api/v1/channels/${channel}`);
  if (response.status !== 200) return 0;
  return ((await response.json()) as { receivers: { total: number } }).receivers.total;
}

/** One run: `edgeViewers` over two edges (0: no edges, the reference), plus `direct` on the origin. */
async function runOnce(ctx: RunContext, pool: WorkerPool, kind: EdgeRunResult['kind'], edgeViewers: number, direct: number): Promise<EdgeRunResult> {
  const node = `'${process.execPath}'`;
  const base = `${node} bin/ws-stream-server.js --http-port {port} --bind-address 127.0.0.1 --log-requests NO --max-ip-concurrent-connections 0 --gop-cache-size-mb 0`;
  const lifetime = ctx.durationS + 120 + edgeViewers / 50;
  const servers: ServerHandle[] = [];
  const start = async (command: string): Promise<ServerHandle> => {
    const server = await startServer({ command, port: await freePort(ctx.host), host: ctx.host, cwd: ctx.cwd, lifetimeSeconds: lifetime, readyTimeoutMs: 20_000 });
    servers.push(server);
    return server;
  };
  try {
    const originAdmin = await freePort(ctx.host);
    const origin = await start(`${base} --admin-address 127.0.0.1:${originAdmin}`);
    const edges = edgeViewers === 0 ? [] : [await start(`${base} --admin-address off --origin-url ws://127.0.0.1:${origin.port}`), await start(`${base} --admin-address off --origin-url ws://127.0.0.1:${origin.port}`)];
    const samplers = [origin, ...edges].map((server) => new ProcSampler(server.pid, true));
    await sleep(300);

    const runId = randomInt(1, 2 ** 31);
    const channel = `edge${runId}`;
    const path = `/${channel}/${ctx.key}/receive`;
    // Worker 0 and 1: the two edges' viewers; worker 2: the direct viewers.
    const targets = edges.length === 2 ? [edges[0]!.port, edges[1]!.port, origin.port] : [origin.port, origin.port, origin.port];
    const counts = edges.length === 2 ? [Math.ceil(edgeViewers / 2), Math.floor(edgeViewers / 2), direct] : [0, 0, direct];
    let indexBase = 0;
    counts.forEach((count, i) => {
      pool.send(i, {
        type: 'connect', transport: 'ws', host: ctx.host, port: targets[i]!, path, count, indexBase, sourceAddrs: ctx.sourceAddrs,
        paused: [], messageBytes: MESSAGE_BYTES, runId, verify: ctx.verify, concurrency: ctx.connectConcurrency, timeoutMs: 15_000,
      });
      indexBase += count;
    });
    const connected = await pool.all('connected', 30_000 + edgeViewers * 20);
    const failed = connected.reduce((sum, reply) => sum + reply.failed, 0);
    // The edges open their upstreams as their first viewers arrive: wait for them.
    const expectedAtOrigin = direct + edges.length;
    const deadline = performance.now() + 15_000;
    let originReceivers = await receiversOf(originAdmin, channel);
    while (originReceivers !== expectedAtOrigin && performance.now() < deadline) {
      await sleep(50);
      originReceivers = await receiversOf(originAdmin, channel);
    }
    ctx.log(`  ${edgeViewers} edge viewers, ${direct} direct (${failed} failed); the origin has ${originReceivers} receivers; publishing for ${ctx.durationS} s`);

    const pub = await Publisher.connect({ transport: 'ws', host: ctx.host, port: origin.port, path: `/${channel}/${ctx.key}/publish`, messageBytes: MESSAGE_BYTES, runId, timeoutMs: 15_000 });
    const warmupMs = ctx.warmupS * 1000;
    const fromNs = process.hrtime.bigint() + BigInt(Math.round((warmupMs + 50) * 1e6));
    let first = samplers.map((sampler) => sampler.sample());
    let busyFirst = machineBusySeconds();
    let cpuFirst = process.cpuUsage();
    let bytesBefore = { bytes: 0, atMs: 0 };
    const measureTimer = setTimeout(() => {
      pool.broadcast({ type: 'measure', fromNs: fromNs.toString() });
      setTimeout(() => {
        first = samplers.map((sampler) => sampler.sample());
        busyFirst = machineBusySeconds();
        cpuFirst = process.cpuUsage();
        void originBytesOut(originAdmin).then((bytes) => (bytesBefore = { bytes, atMs: performance.now() }));
      }, 50);
    }, warmupMs);
    const published = await pub.run({ kind: 'paced', bitsPerSecond: BITS_PER_SECOND }, (ctx.durationS + ctx.warmupS) * 1000, fromNs, () => pool.minProgress()).finally(() => clearTimeout(measureTimer));
    const last = samplers.map((sampler) => sampler.sample());
    const busyLast = machineBusySeconds();
    const parentCpu = process.cpuUsage(cpuFirst);
    const bytesAfter = { bytes: await originBytesOut(originAdmin), atMs: performance.now() };
    await pub.flush(5000);
    pool.broadcast({ type: 'finish', published: published.sent, drainTimeoutMs: 10_000 });
    const stats: StatsReply[] = await pool.all('stats', 20_000);
    await pub.close();
    pool.broadcast({ type: 'teardown', waitCloseMs: 3000 });
    await pool.all('closed', 10_000);

    const edgeHistogram = new Histogram();
    const directHistogram = new Histogram();
    stats.forEach((reply, i) => (i < 2 ? edgeHistogram : directHistogram).merge(reply.histogram));
    const windowS = (last[0]!.atMs - first[0]!.atMs) / 1000;
    const serversCpu = samplers.reduce((sum, _, i) => sum + cpuPercent(first[i]!, last[i]!), 0);
    const generatorCpu = (100 * ((parentCpu.user + parentCpu.system + stats.reduce((sum, reply) => sum + reply.cpuUs, 0)) / 1e6)) / windowS;
    const publishedMbps = (published.measuredSent * MESSAGE_BYTES * 8) / Math.max(1e-3, Number(published.lastSendNs - published.firstMeasuredNs) / 1e9 + 1 / (BITS_PER_SECOND / 8 / MESSAGE_BYTES)) / 1e6;
    // Its own window: the admin API answers when it can.
    const originOutMbps = ((bytesAfter.bytes - bytesBefore.bytes) * 8) / ((bytesAfter.atMs - bytesBefore.atMs) / 1000) / 1e6;
    const edgeLatency = edges.length === 0 ? null : summary(edgeHistogram);
    const directLatency = summary(directHistogram);
    return {
      kind,
      edgeViewers,
      directViewers: direct,
      originReceivers,
      connectFailed: failed,
      windowS,
      publishedMbps,
      originOutMbps,
      originOutReceivers: publishedMbps > 0 ? originOutMbps / publishedMbps : 0,
      originCpuPercent: cpuPercent(first[0]!, last[0]!),
      originRssMb: last[0]!.rssKb / 1024,
      edgeCpuPercent: edges.map((_, i) => cpuPercent(first[i + 1]!, last[i + 1]!)),
      edgeLatencyMs: edgeLatency,
      directLatencyMs: directLatency,
      hopP99Ms: edgeLatency === null ? null : edgeLatency.p99 - directLatency.p99,
      missing: stats.reduce((sum, reply) => sum + reply.missing, 0),
      otherCpuPercent: Math.max(0, (100 * (busyLast - busyFirst)) / windowS - serversCpu - generatorCpu),
    };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/**
 * The reference (origin alone with DIRECT_VIEWERS + 2 receivers), then each viewer count over
 * two edges. Uses its own pool of three workers (two edges' viewers, direct viewers).
 */
export async function runEdgeScenario(ctx: RunContext, viewerCounts: readonly number[]): Promise<EdgeRunResult[]> {
  const pool = new WorkerPool(3);
  const results: EdgeRunResult[] = [];
  try {
    const runs: Array<[EdgeRunResult['kind'], number, number]> = [['reference', 0, DIRECT_VIEWERS + 2]];
    for (const count of viewerCounts) runs.push(['cost', count, DIRECT_VIEWERS], ['hop', count, Math.ceil(count / 2)]);
    for (const [kind, edgeViewers, direct] of runs) {
      if (ctx.quietWaitS > 0) await waitForQuiet(ctx);
      ctx.log(` edge ${kind} run: ${edgeViewers === 0 ? `${direct} receivers on the origin, no edge` : `${edgeViewers} viewers over 2 edges + ${direct} direct`}`);
      try {
        results.push(await runOnce(ctx, pool, kind, edgeViewers, direct));
      } catch (error) {
        pool.broadcast({ type: 'teardown', waitCloseMs: 0 });
        await pool.all('closed', 10_000).catch(() => undefined);
        pool.clearInbox();
        results.push({ kind, edgeViewers, directViewers: direct, error: (error as Error).message } as EdgeRunResult);
      }
    }
  } finally {
    await pool.close();
  }
  return results;
}

const f1 = (value: number): string => value.toFixed(1);

/** The edge runs as a table, then the two targets' verdicts. */
export function formatEdge(results: readonly EdgeRunResult[]): string[] {
  const lines = ['Edge (origin + 2 edges, 2 Mbit/s in 32 KiB messages):', '  run       | edge viewers | direct | origin receivers | origin out Mbit/s (x stream) | origin CPU % | edge CPU % | p99 edge ms | p99 direct ms | hop p99 ms | missing | other CPU %'];
  for (const r of results) {
    if (r.error !== undefined) {
      lines.push(`  ${r.edgeViewers}: error: ${r.error}`);
      continue;
    }
    lines.push(
      `  ${r.kind.padEnd(9)} | ${String(r.edgeViewers).padStart(12)} | ${String(r.directViewers).padStart(6)} | ${String(r.originReceivers).padStart(16)} | ${f1(r.originOutMbps).padStart(9)} (x${r.originOutReceivers.toFixed(2)})${' '.repeat(11)} | ${f1(r.originCpuPercent).padStart(12)} | ${(r.edgeCpuPercent.map(f1).join(' / ') || '-').padStart(10)} | ${(r.edgeLatencyMs ? f1(r.edgeLatencyMs.p99) : '-').padStart(11)} | ${f1(r.directLatencyMs.p99).padStart(13)} | ${(r.hopP99Ms === null ? '-' : f1(r.hopP99Ms)).padStart(10)} | ${String(r.missing).padStart(7)} | ${f1(r.otherCpuPercent)}`,
    );
  }
  const reference = results.find((r) => r.kind === 'reference' && r.error === undefined);
  const runs = results.filter((r) => r.kind === 'cost' && r.error === undefined);
  const hops = results.filter((r) => r.kind === 'hop' && r.error === undefined);
  if (runs.length > 0) {
    const flat = runs.every((r) => r.originReceivers === DIRECT_VIEWERS + 2);
    const ratios = runs.map((r) => r.originOutReceivers.toFixed(2)).join(', ');
    lines.push(`  [${flat ? 'PASS' : 'FAIL'}] the origin serves ${DIRECT_VIEWERS} direct viewers + one receiver per edge whatever the edge viewer count: origin receivers ${runs.map((r) => r.originReceivers).join(', ')}, bytes out = ${ratios} x the stream; origin CPU ${runs.map((r) => f1(r.originCpuPercent)).join(', ')} % (reference with ${DIRECT_VIEWERS + 2} direct receivers: ${reference ? f1(reference.originCpuPercent) : '?'} %)`);
  }
  if (hops.length > 0) {
    const worst = Math.max(...hops.map((r) => r.hopP99Ms ?? Infinity));
    lines.push(`  [${worst <= 5 ? 'PASS' : 'FAIL'}] one edge hop adds <= 5 ms at p99 (edge viewers vs as many per worker direct, same run): ${hops.map((r) => `${r.edgeViewers} viewers: ${f1(r.hopP99Ms ?? NaN)} ms`).join(', ')}`);
  }
  return lines;
}
