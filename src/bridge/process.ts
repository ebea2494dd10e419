import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

/** How a child ended. `error` is set when it could not be started at all. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

/** How long `stop()` waits at each step: after closing stdin, then after SIGTERM. */
export interface StopTimeouts {
  readonly endMs: number;
  readonly termMs: number;
}

export const DEFAULT_STOP_TIMEOUTS: StopTimeouts = { endMs: 5_000, termMs: 3_000 };

/**
 * One ffmpeg (or any) child fed through stdin, its stderr read line by line. Node reaps the
 * child when it exits (no zombie); `stop()` makes sure it does exit, in bounded time.
 */
export class ChildWithStdin {
  readonly child: ChildProcess;
  readonly startedAt = Date.now();
  /** Resolves once the child is gone and its stderr is read. Never rejects. */
  readonly exited: Promise<ExitInfo>;
  private exit: ExitInfo | undefined;
  private stdinOpen = true;
  private stopping: Promise<ExitInfo> | undefined;
  private partialLine = '';
  /** Bytes handed to stdin so far. */
  bytesWritten = 0;

  constructor(binary: string, args: readonly string[], onLine: (line: string) => void = () => {}) {
    // Its own process group: a Ctrl-C meant for the server does not kill ffmpeg behind the
    // server's back; the server stops it. If the server dies, stdin closes and ffmpeg ends.
    this.child = spawn(binary, args, { stdio: ['pipe', 'ignore', 'pipe'], detached: true });
    const stdin = this.child.stdin!;
    // EPIPE when the child is gone: its exit tells the story.
    stdin.on('error', () => (this.stdinOpen = false));
    stdin.on('close', () => (this.stdinOpen = false));
    const stderr = this.child.stderr!;
    stderr.setEncoding('utf8');
    stderr.on('data', (text: string) => {
      const lines = (this.partialLine + text).split(/\r?\n|\r/);
      this.partialLine = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') onLine(line);
    });
    this.exited = new Promise((resolve) => {
      const done = (info: ExitInfo): void => {
        if (this.exit !== undefined) return;
        if (this.partialLine.trim() !== '') onLine(this.partialLine);
        this.partialLine = '';
        this.exit = info;
        this.stdinOpen = false;
        resolve(info);
      };
      // 'close' comes after stderr is fully read; a spawn failure gives 'error' without a pid.
      this.child.once('close', (code, signal) => done({ code, signal }));
      this.child.once('error', (error) => {
        if (this.child.pid === undefined) done({ code: null, signal: null, error });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.exit;
  }

  /** Bytes accepted by `write` and not yet taken by the pipe. */
  get writableLength(): number {
    return this.stdinOpen ? this.child.stdin!.writableLength : 0;
  }

  /** Writes a copy of `data` (the caller's view may be reused after the call). */
  write(data: Uint8Array): void {
    if (!this.stdinOpen) return;
    this.child.stdin!.write(Buffer.from(data));
    this.bytesWritten += data.byteLength;
  }

  onDrain(listener: () => void): void {
    this.child.stdin!.on('drain', listener);
  }

  /**
   * Ends it: stdin is closed (ffmpeg finishes its output), then SIGTERM after `endMs`, then
   * SIGKILL after `termMs`. Resolves when the child is gone.
   */
  stop(timeouts: StopTimeouts = DEFAULT_STOP_TIMEOUTS): Promise<ExitInfo> {
    this.stopping ??= (async () => {
      if (this.exit !== undefined) return this.exit;
      this.child.stdin!.end();
      if (await within(this.exited, timeouts.endMs)) return this.exited;
      this.child.kill('SIGTERM');
      if (await within(this.exited, timeouts.termMs)) return this.exited;
      this.child.kill('SIGKILL');
      return this.exited;
    })();
    return this.stopping;
  }
}

/** True if `promise` settles within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `code 1`, `signal SIGKILL`, or the spawn error. */
export function describeExit(exit: ExitInfo): string {
  if (exit.error !== undefined) return `could not start: ${exit.error.message}`;
  return exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${exit.code ?? '?'}`;
}
