/**
 * Scenario (memory): many publishers of a stream the server cannot parse (opaque), no receivers.
 * Every channel caches up to GOP_CACHE_SIZE_MB of it, so without a server-wide limit the
 * server's memory grows with publishers × bitrate × time; CACHE_MEMORY_LIMIT_MB caps the total.
 * The same load runs against a server without the limit and one with it, side by side, and
 * reports each server's peak RSS and what its admin API says the caches hold.
 */
import { randomInt } from 'node:crypto';
import { ProcSampler, cpuPercent } from './proc-sampler.js';
import { Publisher } from './publisher.js';
import type { PublishResult } from './publisher.js';
import { freePort, sleep, startServer } from './server-process.js';

export interface ManyPublishersSpec {
  publishers: number;
  bitsPerSecond: number;
  messageBytes: number;
  /** CACHE_MEMORY_LIMIT_MB of each server run (0: no server-wide limit). */
  limitsMb: number[];
}

export interface ManyPublishersRun {
  limitMb: number;
  publishersAsked: number;
  publishersConnected: number;
  /** Input of all publishers together over the publishing window. */
  publishedMbps: number;
  seconds: number;
  closedByServer: number;
  lateSends: number;
  /** From the server's /api/v1/server at the end of the window (null for another server). */
  cacheMb: number | null;
  trims: number | null;
  trimmedMb: number | null;
  peakRssMb: number;
  rssBeforeMb: number;
  rssEndMb: number;
  cpuPercent: number;
}

export interface ManyPublishersContext {
  host: string;
  serverCommand: string;
  cwd: string;
  key: string;
  durationS: number;
  /** Extra environment of the server under test (e.g. WORKERS). */
  serverEnv?: Record<string, string>;
  log: (line: string) => void;
}

const CONNECT_BATCH = 50;
const MiB = 1024 * 1024;

/**
 * Our server's bench command with the cache on (the other scenarios turn it off), the given
 * limit, and the admin API on loopback; null for a command that is not ours.
 */
function commandFor(base: string, limitMb: number, adminPort: number, host: string): string | null {
  if (!base.includes('--gop-cache-size-mb 0') || !base.includes('--admin-address off')) return null;
  return base
    .replace('--gop-cache-size-mb 0', `--gop-cache-size-mb 256 --cache-memory-limit-mb ${limitMb}`)
    .replace('--admin-address off', `--admin-address ${host}:${adminPort}`);
}

export async function runManyPublishers(ctx: ManyPublishersContext, spec: ManyPublishersSpec): Promise<{ runs: ManyPublishersRun[]; notes: string[] }> {
  const runs: ManyPublishersRun[] = [];
  const notes: string[] = [];
  for (const limitMb of spec.limitsMb) {
    const adminPort = await freePort(ctx.host);
    const ours = commandFor(ctx.serverCommand, limitMb, adminPort, ctx.host);
    if (ours === null && runs.length > 0) break; // another server: one run as given is all we can do
    if (ours === null) notes.push('not our server command: one run as given, no cache figures');
    ctx.log(`  CACHE_MEMORY_LIMIT_MB=${limitMb === 0 ? '0 (no limit)' : limitMb}: ${spec.publishers} publishers for ${ctx.durationS} s`);
    runs.push(await runOnce(ctx, spec, ours ?? ctx.serverCommand, ours === null ? null : adminPort, limitMb));
  }
  return { runs, notes };
}

async function runOnce(ctx: ManyPublishersContext, spec: ManyPublishersSpec, command: string, adminPort: number | null, limitMb: number): Promise<ManyPublishersRun> {
  const port = await freePort(ctx.host);
  const server = await startServer({ command, port, host: ctx.host, cwd: ctx.cwd, env: ctx.serverEnv ?? {}, lifetimeSeconds: ctx.durationS + 120 + spec.publishers / 20, readyTimeoutMs: 20_000 });
  const sampler = new ProcSampler(server.pid, true);
  const publishers: Publisher[] = [];
  try {
    await sleep(300);
    const before = sampler.sample();
    sampler.start();
    const runId = randomInt(1, 2 ** 31);
    for (let i = 0; i < spec.publishers; i += CONNECT_BATCH) {
      const batch = Array.from({ length: Math.min(CONNECT_BATCH, spec.publishers - i) }, (_, k) =>
        Publisher.connect({ transport: 'ws', host: ctx.host, port, path: `/opaque${runId}-${i + k}/${ctx.key}/publish`, messageBytes: spec.messageBytes, runId, timeoutMs: 15_000 }).catch(() => null),
      );
      for (const publisher of await Promise.all(batch)) if (publisher !== null) publishers.push(publisher);
    }
    const s1 = sampler.sample();
    const results: PublishResult[] = await Promise.all(publishers.map((publisher) => publisher.run({ kind: 'paced', bitsPerSecond: spec.bitsPerSecond }, ctx.durationS * 1000, 0n)));
    const s2 = sampler.sample();
    let cache: { cacheBytes: number; trims: number; trimmedBytes: number } | null = null;
    if (adminPort !== null) {
      const response = await fetch(`http://${ctx.host}:${adminPort}/api/v1/server`);
      cache = ((await response.json()) as { cacheMemory: { cacheBytes: number; trims: number; trimmedBytes: number } }).cacheMemory;
    }
    const seconds = (s2.atMs - s1.atMs) / 1000;
    const bytes = results.reduce((sum, r) => sum + r.bytes, 0);
    return {
      limitMb,
      publishersAsked: spec.publishers,
      publishersConnected: publishers.length,
      publishedMbps: seconds > 0 ? (bytes * 8) / seconds / 1e6 : 0,
      seconds,
      closedByServer: results.filter((r) => r.closedByServer).length,
      lateSends: results.reduce((sum, r) => sum + r.lateSends, 0),
      cacheMb: cache === null ? null : cache.cacheBytes / MiB,
      trims: cache?.trims ?? null,
      trimmedMb: cache === null ? null : cache.trimmedBytes / MiB,
      peakRssMb: sampler.peakKb / 1024,
      rssBeforeMb: before.rssKb / 1024,
      rssEndMb: s2.rssKb / 1024,
      cpuPercent: cpuPercent(s1, s2),
    };
  } finally {
    sampler.stop();
    await Promise.all(publishers.map((publisher) => publisher.close()));
    await server.stop();
  }
}
