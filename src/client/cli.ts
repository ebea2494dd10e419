// The client subcommands of the ws-stream-server program: publish, receive, probe.
// Exit codes: 0 done, 1 other failures (I/O), 2 usage, 3 refused or stopped by a server
// limit, 4 connection failed; the message on stderr names the cause.
import { execFile } from 'node:child_process';
import { accessSync, constants, createReadStream, createWriteStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { findFfmpeg } from '../bridge/ffmpeg.js';
import { sniffContainer } from '../media/sniff.js';
import { StreamClientError } from './errors.js';
import type { ErrorCategory } from './errors.js';
import { paceByTimestamps } from './pacer.js';
import { StreamPublisher } from './publisher.js';
import { StreamReceiver, probe } from './receiver.js';

export const ExitCode = { OK: 0, FAILURE: 1, USAGE: 2, REFUSED: 3, CONNECTION: 4 } as const;

const EXIT_CODES: Record<ErrorCategory, number> = { usage: ExitCode.USAGE, refused: ExitCode.REFUSED, limit: ExitCode.REFUSED, connection: ExitCode.CONNECTION };
const CAUSES: Record<ErrorCategory, string> = { usage: 'usage', refused: 'refused', limit: 'stopped by a server limit', connection: 'connection failed' };

/** An error of the command line itself (exit 2). */
class UsageError extends Error {}

export function addClientCommands(program: Command): void {
  // Usage errors of commander (exit 2) are handled by the program these commands are added to.
  program
    .command('publish')
    .description('publish stdin or a file: each read becomes one binary message')
    .argument('<url>', 'ws://HOST:PORT/<channel>/<key>[/publish]')
    .argument('[file]', 'file to send (default, or "-": stdin)')
    .option('--realtime', 'send FLV, MPEG-TS or WebM at the pace of its timestamps, like ffmpeg -re')
    .action((url: string, file: string | undefined, options: { realtime?: boolean }) => run('publish', () => publishCommand(url, file, options.realtime === true)));
  program
    .command('receive')
    .description('receive a stream to stdout or a file until the publisher ends')
    .argument('<url>', 'ws://HOST:PORT/<channel>/<key>[/receive|/receive-clear-cache]')
    .option('-o, --output <file>', 'write to this file (default, or "-": stdout)')
    .option('--wait', 'keep waiting across publisher restarts (until interrupted)')
    .option('-v, --verbose', 'report connecting, waiting, reconnecting and the publisher ending on stderr')
    .action((url: string, options: { output?: string; wait?: boolean; verbose?: boolean }) =>
      run('receive', () => receiveCommand(url, options.output, options.wait === true, options.verbose === true)),
    );
  program
    .command('probe')
    .description('wait for the first chunk of a stream and print its size (and, with ffprobe, codecs and resolution) as JSON')
    .argument('<url>', 'ws://HOST:PORT/<channel>/<key>[/probe]')
    .action((url: string) => run('probe', () => probeCommand(url)));
}

async function run(command: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    let code: number = ExitCode.FAILURE;
    let text = error instanceof Error ? error.message : String(error);
    if (error instanceof StreamClientError) {
      code = EXIT_CODES[error.category];
      text = `${CAUSES[error.category]} (${error.code}): ${error.message}`;
    } else if (error instanceof UsageError) {
      code = ExitCode.USAGE;
    }
    process.stderr.write(`ws-stream-server ${command}: ${text}\n`);
    process.exitCode = code;
  }
}

async function publishCommand(url: string, file: string | undefined, realtime: boolean): Promise<void> {
  const fromFile = file !== undefined && file !== '-';
  if (fromFile) {
    try {
      await access(file, constants.R_OK);
    } catch (error) {
      throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
    }
  }
  const publisher = new StreamPublisher(url);
  const input: Readable = fromFile ? createReadStream(file, { highWaterMark: 64 * 1024 }) : process.stdin;
  // A failure while waiting for input (the stream killed, the server gone) ends the loop below.
  publisher.on('error', () => input.destroy());
  const progress = new Progress();
  try {
    await publisher.opened;
    const source: AsyncIterable<Uint8Array> = realtime ? paceWithUsage(input) : input;
    for await (const chunk of source) {
      if (!publisher.write(chunk)) await publisher.drained();
      progress.add(chunk.byteLength);
    }
    await publisher.end();
  } catch (error) {
    publisher.close();
    input.destroy();
    throw publisher.error ?? error;
  } finally {
    progress.stop();
  }
}

async function* paceWithUsage(input: Readable): AsyncGenerator<Uint8Array> {
  try {
    yield* paceByTimestamps(input);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('--realtime')) throw new UsageError(error.message);
    throw error;
  }
}

async function receiveCommand(url: string, output: string | undefined, wait: boolean, verbose: boolean): Promise<void> {
  const receiver = new StreamReceiver(url, { wait });
  if (verbose) {
    const say = (text: string): boolean => process.stderr.write(`ws-stream-server receive: ${text}\n`);
    receiver.on('open', () => say(`connected to ${receiver.url}, waiting for the stream`));
    receiver.on('end', () => say('the publisher ended'));
    receiver.on('reconnecting', ({ delayMs, error }) => say(`reconnecting in ${Math.round(delayMs)} ms (${error.message})`));
  }
  const stop = (): void => receiver.close();
  process.once('SIGINT', stop).once('SIGTERM', stop);
  const destination: Writable = output === undefined || output === '-' ? process.stdout : createWriteStream(output);
  try {
    await pipeline(receiver.toStream(), destination);
  } catch (error) {
    receiver.close();
    // A reader that went away (`receive | head`) is not a failure.
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return;
    throw error;
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}

async function probeCommand(url: string): Promise<void> {
  const chunk = await probe(url);
  const result: Record<string, unknown> = { bytes: chunk.byteLength, container: sniffContainer(chunk) ?? 'unknown' };
  const ffprobe = findFfprobe();
  if (ffprobe === undefined) {
    process.stderr.write('ws-stream-server probe: ffprobe not found (put it on the PATH or set FFPROBE_PATH): codecs and resolution not shown\n');
  } else {
    result.streams = await runFfprobe(ffprobe, chunk);
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

/** `FFPROBE_PATH`, else `ffprobe` beside the ffmpeg in use, else on the PATH. */
function findFfprobe(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FFPROBE_PATH) return env.FFPROBE_PATH;
  const ffmpeg = findFfmpeg(env);
  const directories = [...(ffmpeg === undefined ? [] : [dirname(ffmpeg.path)]), ...(env.PATH ?? '').split(delimiter).filter(Boolean)];
  for (const directory of directories) {
    const candidate = join(directory, 'ffprobe');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

interface ProbedStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
}

async function runFfprobe(ffprobe: string, chunk: Uint8Array): Promise<ProbedStream[]> {
  const args = ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,width,height', '-of', 'json', '-i', 'pipe:0'];
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = execFile(ffprobe, args, { maxBuffer: 1024 * 1024 }, (error, out) => (error ? reject(new Error(`ffprobe failed: ${error.message}`)) : resolve(out)));
    child.stdin?.on('error', () => {}); // ffprobe may stop reading once it knows enough.
    child.stdin?.end(chunk);
  });
  const streams = (JSON.parse(stdout) as { streams?: ProbedStream[] }).streams ?? [];
  return streams.map(({ codec_type, codec_name, width, height }) => ({ codec_type, codec_name, width, height }));
}

/** `12.3 MB, 2.45 Mbit/s, 0:01:23` (bytes sent, average bitrate, elapsed) on one stderr line, refreshed each second, only on a terminal. */
class Progress {
  private bytes = 0;
  private readonly started = performance.now();
  private readonly timer: ReturnType<typeof setInterval> | undefined;

  constructor() {
    if (process.stderr.isTTY) {
      this.timer = setInterval(() => this.print(), 1000);
      this.timer.unref();
    }
  }

  add(bytes: number): void {
    this.bytes += bytes;
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.print();
    process.stderr.write('\n');
  }

  private print(): void {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? (this.bytes * 8) / seconds / 1e6 : 0;
    const clock = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, Math.floor(seconds) % 60].map((n, i) => (i === 0 ? String(n) : String(n).padStart(2, '0'))).join(':');
    const size = this.bytes < 1e6 ? `${(this.bytes / 1e3).toFixed(1)} kB` : `${(this.bytes / 1e6).toFixed(1)} MB`;
    process.stderr.write(`\r${size}, ${rate.toFixed(2)} Mbit/s, ${clock}\x1b[K`);
  }
}
