import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Test } from 'tap';
import { Application } from '../../src/app.js';
import type { Channel } from '../../src/channels/index.js';
import { loadConfig } from '../../src/config/index.js';
import type { SettingName } from '../../src/config/index.js';
import { Logger } from '../../src/log/logger.js';
import { TestClient } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { suiteWorkers } from '../helpers/server.js';
import { FFMPEG, ffmpeg } from '../media/helpers.js';

export { FFMPEG, ffmpeg, makeSample, scratchDir } from '../media/helpers.js';
export { ffmpegVersion } from '../../src/bridge/ffmpeg.js';

/** Polls `check` until it returns something other than undefined/false, at most `timeoutMs`. */
export async function poll<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * A channel's bridges and recording, once attached: at once when the server runs on one thread;
 * with worker threads once the stream has been relayed to the main thread (where they run).
 */
export function outputsOf(app: Application, name: string): Promise<{ channel: Channel } & NonNullable<ReturnType<NonNullable<Application['bridges']>['outputs']>>> {
  return poll(`the outputs of '${name}' to attach`, () => {
    const channel = app.registry.get(name);
    const outputs = channel === undefined ? undefined : app.bridges?.outputs(channel);
    return outputs === undefined ? undefined : { channel: channel!, ...outputs };
  });
}

/** Log lines, with debug on, for tests that look at what the server says. */
export class LogLines {
  readonly lines: string[] = [];
  readonly logger = new Logger({ requests: false, debug: true }, (line) => this.lines.push(line));

  matching(pattern: RegExp): string[] {
    return this.lines.filter((line) => pattern.test(line));
  }
}

export interface BridgeApp {
  app: Application;
  log: LogLines;
  port: number;
  url(path: string): string;
  http(path: string): string;
}

/**
 * The whole application (as `serve` runs it) on a loopback port, closed when the test ends. Its
 * ffmpeg is the tests' own (FFMPEG_PATH when set), so a test pass runs one ffmpeg throughout.
 */
export async function startApp(t: Test, settings: Partial<Record<SettingName, string>>): Promise<BridgeApp> {
  const port = await freePort();
  const config = loadConfig({
    flags: { httpPort: String(port), bindAddress: '127.0.0.1', adminAddress: 'off', maxIpConcurrentConnections: '0', logRequests: 'NO', ffmpegPath: FFMPEG, workers: String(suiteWorkers), ...settings },
  });
  const log = new LogLines();
  const app = await Application.start(config, { logger: log.logger });
  t.teardown(() => app.close());
  return { app, log, port, url: (path) => `ws://127.0.0.1:${port}${path}`, http: (path) => `http://127.0.0.1:${port}${path}` };
}

/**
 * Publishes `bytes` (a sample of `seconds` seconds) in chunks at about real-time pace: each
 * chunk goes out when the share of the sample sent so far matches the share of time elapsed.
 * Resolves when everything is sent; the publisher stays open unless `close` is set.
 */
export async function publishPaced(
  publisher: TestClient,
  bytes: Buffer,
  seconds: number,
  options: { chunkBytes?: number; close?: boolean; stop?: () => boolean } = {},
): Promise<void> {
  const chunk = options.chunkBytes ?? 16 * 1024;
  const start = Date.now();
  for (let at = 0; at < bytes.length; at += chunk) {
    if (options.stop?.() === true) break;
    const due = start + (at / bytes.length) * seconds * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await publisher.send(bytes.subarray(at, at + chunk));
  }
  if (options.close === true) await publisher.close();
}

export interface StreamReport {
  video?: { codec: string; profile: string; width: number; height: number };
  audio?: { codec: string };
  stderr: string;
}

/** What ffmpeg's demuxer says about the streams of an input (we have no ffprobe). */
export function parseStreams(stderr: string): StreamReport {
  const report: StreamReport = { stderr };
  for (const line of stderr.split('\n')) {
    if (!/^\s*Stream #0:\d+/.test(line) || line.includes('->')) continue;
    const video = /Video: (\w+)(?: \(([^)]*)\))?.*?, (\d+)x(\d+)/.exec(line);
    if (video !== null && report.video === undefined) report.video = { codec: video[1]!, profile: video[2] ?? '', width: Number(video[3]), height: Number(video[4]) };
    const audio = /Audio: (\w+)/.exec(line);
    if (audio !== null && report.audio === undefined) report.audio = { codec: audio[1]! };
  }
  return report;
}

export interface ReadBack extends StreamReport {
  /** Timestamp (seconds) of the end of the last video and audio packet read, as the input gives them. */
  videoEnd?: number;
  audioEnd?: number;
}

/**
 * Reads an input (an RTMP URL, a file) until it ends, packets copied (nothing decoded), and
 * reports its streams and where each ends. Probing stops after 1 s of stream (an RTMP server
 * may announce a track that never comes). The reader is killed (and reaped) when the test ends,
 * whether it passed, failed or timed out.
 */
export async function readBack(t: Test, input: string): Promise<ReadBack> {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'info', '-analyzeduration', '1000000', '-copyts', '-i', input, '-map', '0', '-c', 'copy', '-f', 'framecrc', '-'];
  const child = spawn(FFMPEG, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const code = await exited;
  if (code !== 0) throw new Error(`ffmpeg ${args.join(' ')} exited with ${code}: ${stderr.slice(-1000)}`);
  const report: ReadBack = parseStreams(stderr);
  // framecrc: `#tb N: num/den`, then `stream, dts, pts, duration, size, crc` per packet.
  const timeBases = new Map<number, number>();
  const ends = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    const base = /^#tb (\d+): (\d+)\/(\d+)/.exec(line);
    if (base !== null) timeBases.set(Number(base[1]), Number(base[2]) / Number(base[3]));
    const packet = /^\s*(\d+),\s*(-?\d+),\s*(-?\d+),\s*(\d+),/.exec(line);
    if (packet === null) continue;
    const stream = Number(packet[1]);
    const end = (Number(packet[3]) + Number(packet[4])) * (timeBases.get(stream) ?? 0);
    ends.set(stream, Math.max(ends.get(stream) ?? 0, end));
  }
  const kinds = [...stderr.matchAll(/^\s*Stream #0:(\d+)[^:]*: (Video|Audio):/gm)];
  for (const [, index, kind] of kinds) {
    const end = ends.get(Number(index));
    if (end === undefined) continue;
    if (kind === 'Video') report.videoEnd ??= end;
    else report.audioEnd ??= end;
  }
  return report;
}

/** Decodes a file completely: error-level lines (should be none) and the decoded duration in seconds. */
export async function decodeFile(path: string): Promise<{ errors: string; seconds: number; report: StreamReport }> {
  const { stderr } = await ffmpeg(['-loglevel', 'level+info', '-i', path, '-f', 'null', '-']);
  const errors = stderr
    .split('\n')
    .filter((line) => /\[(error|fatal|panic)\]/.test(line))
    .join('\n');
  const times = [...stderr.matchAll(/time=(\d+):(\d+):(\d+(?:\.\d+)?)/g)];
  const last = times.at(-1);
  const seconds = last === undefined ? 0 : Number(last[1]) * 3600 + Number(last[2]) * 60 + Number(last[3]);
  return { errors, seconds, report: parseStreams(stderr.replace(/^\[\w+\] /gm, '')) };
}

/** The ffmpeg (or any) children of this test process, zombies included: [pid, state, name]. */
export function childProcesses(name = 'ffmpeg'): Array<{ pid: number; state: string; comm: string }> {
  const children = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid …: comm may hold spaces and parentheses.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const [state = '', ppid = ''] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === process.pid && comm.includes(name)) children.push({ pid: Number(entry), state, comm });
  }
  return children;
}

/** At the end of a test file: no ffmpeg child left running, none left as a zombie. */
export function checkNoChildrenAtEnd(t: Test): void {
  t.test('no ffmpeg child processes remain', async (t) => {
    t.same(childProcesses(), [], 'no ffmpeg children, running or zombie');
  });
}

interface RtmpSession {
  run(): void;
  stop(): void;
}

/**
 * A real RTMP server on 127.0.0.1 (node-media-server's RTMP session, on our own listener so it
 * binds loopback only), closed when the test ends. `published` lists the stream paths pushed to it.
 */
export async function startRtmpServer(t: Test): Promise<{ port: number; url(path: string): string; published: string[] }> {
  const require = createRequire(import.meta.url);
  const logger = require('node-media-server/src/node_core_logger') as { setLogType(type: number): void };
  logger.setLogType(0);
  const Session = require('node-media-server/src/node_rtmp_session') as new (config: unknown, socket: net.Socket) => RtmpSession;
  const context = require('node-media-server/src/node_core_ctx') as { nodeEvent: { on(event: string, listener: (id: string, path: string) => void): void; removeListener(event: string, listener: (id: string, path: string) => void): void } };
  const config = { rtmp: { chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 } };
  const sessions = new Set<RtmpSession>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const session = new Session(config, socket);
    sessions.add(session);
    session.run();
  });
  const published: string[] = [];
  const onPublish = (_id: string, path: string): void => {
    published.push(path);
  };
  context.nodeEvent.on('postPublish', onPublish);
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  t.teardown(async () => {
    context.nodeEvent.removeListener('postPublish', onPublish);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port, url: (path) => `rtmp://127.0.0.1:${port}${path}`, published };
}

/** GET over HTTP: status, headers and body (no keep-alive: nothing lingers after the test). */
export function get(url: string): Promise<{ status: number; headers: Map<string, string>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { agent: false, headers: { connection: 'close' } }, (response) => {
      const parts: Buffer[] = [];
      response.on('data', (part: Buffer) => parts.push(part));
      response.on('end', () => {
        const headers = new Map(Object.entries(response.headers).map(([name, value]) => [name, String(value)]));
        resolve({ status: response.statusCode ?? 0, headers, body: Buffer.concat(parts) });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** Segment names in a playlist, in order. */
export function segmentsOf(playlist: string): string[] {
  if (!playlist.startsWith('#EXTM3U')) throw new Error(`not a playlist: ${playlist.slice(0, 100)}`);
  return playlist.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

/** The segments listed by the playlist at `url` now: none while it is not there (404). */
export async function listedSegments(url: string): Promise<string[]> {
  const response = await get(url);
  return response.status === 200 ? segmentsOf(response.body.toString()) : [];
}
