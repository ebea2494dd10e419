import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { statSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { requireFfmpeg } from '../../src/bridge/ffmpeg.js';

const run = promisify(execFile);
export const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/ws-stream-server.js', import.meta.url));

/**
 * The CLI runs from dist/: rebuilds it when src/client/ is newer (`npm test` builds first
 * anyway; this covers `npx tap test/client`).
 */
export async function ensureBuilt(): Promise<void> {
  const built = (path: string): number => {
    try {
      return statSync(new URL(`../../dist/src/client/${path}`, import.meta.url)).mtimeMs;
    } catch {
      return 0;
    }
  };
  const sources = readdirSync(new URL('../../src/client/', import.meta.url)).filter((name) => name.endsWith('.ts'));
  const stale = sources.some((name) => statSync(new URL(`../../src/client/${name}`, import.meta.url)).mtimeMs > built(name.replace(/\.ts$/, '.js')));
  if (!stale && built('../cli.js') > 0) return;
  // tsc still emits when files owned by others do not type-check; the client tests only need dist/.
  await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root }).catch(() => {});
}

export const ffmpeg = (): string => requireFfmpeg().path;

/** ffmpeg arguments for `seconds` of test picture and tone, H.264/AAC in FLV. */
export function flvArgs(seconds: number, output: string): string[] {
  return [
    '-v', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine',
    '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-c:a', 'aac', '-f', 'flv', output,
  ];
}

export async function makeFlv(path: string, seconds: number): Promise<void> {
  await run(ffmpeg(), flvArgs(seconds, path));
}

/** What `ffmpeg -v error` says while decoding the whole file: empty when it decodes cleanly. */
export async function decodeErrors(path: string): Promise<string> {
  const { stderr } = await run(ffmpeg(), ['-v', 'error', '-nostdin', '-i', path, '-f', 'null', '-']);
  return stderr;
}

export interface Cli {
  child: ChildProcess;
  stdout: () => Buffer;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  exit: Promise<number | string>;
  /** Resolves once stderr has had `text` `count` times; rejects if the process exits first. */
  stderrLine(text: string, count?: number): Promise<void>;
}

/** `node bin/ws-stream-server.js ARGS`, with stdin from `stdin` (a process's stdout, or nothing). */
export function cli(args: string[], options: { stdin?: NodeJS.ReadableStream; env?: Record<string, string> } = {}): Cli {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    // Without tap's NODE_OPTIONS (its process-info hook doubles the CLI's start-up time).
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !name.startsWith('_TAPJS'))), ...options.env },
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (options.stdin && child.stdin) {
    child.stdin.on('error', () => {}); // The CLI may exit before reading everything (refusals).
    options.stdin.pipe(child.stdin);
  }
  const out: Buffer[] = [];
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (data: Buffer) => out.push(data));
  child.stderr!.on('data', (data: Buffer) => {
    err += data.toString();
    for (const wake of waiters.splice(0)) wake();
  });
  const exit = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? -1)));
  let exited = false;
  void exit.then(() => {
    exited = true;
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    exit,
    async stderrLine(text, count = 1) {
      while (err.split(text).length - 1 < count) {
        if (exited) throw new Error(`exited before printing "${text}"; stderr: ${err}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}
