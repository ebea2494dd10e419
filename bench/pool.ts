/**
 * The receiver worker processes (fork of worker.js) and a request/collect
 * helper over their IPC channels. Every wait is bounded by a timeout.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerCommand, WorkerReply } from './ipc.js';

const WORKER_PATH = fileURLToPath(new URL('./worker.js', import.meta.url));

export class WorkerPool {
  private readonly children: ChildProcess[] = [];
  private readonly inbox: WorkerReply[][] = [];
  private readonly waiters: Array<(() => void) | null> = [];
  /** Latest progress report of each worker (null: no reading receiver there). */
  private readonly progress: Array<number | null> = [];

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      // Workers hold thousands of sockets; give V8 room and keep them out of the parent's stdin.
      const child = fork(WORKER_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=2048'] });
      this.children.push(child);
      this.inbox.push([]);
      this.waiters.push(null);
      this.progress.push(null);
      child.on('message', (m: WorkerReply) => {
        if (m.type === 'progress') {
          this.progress[i] = m.minOk;
          return;
        }
        this.inbox[i]!.push(m);
        this.waiters[i]?.();
      });
      child.on('exit', () => this.waiters[i]?.());
    }
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid ?? -1);
  }

  send(index: number, cmd: WorkerCommand): void {
    this.children[index]!.send(cmd);
  }

  broadcast(cmd: WorkerCommand): void {
    for (let i = 0; i < this.size; i++) this.send(i, cmd);
  }

  /** Next reply of type `type` from worker `index`; throws on timeout, worker exit or fatal. */
  async next<T extends WorkerReply['type']>(index: number, type: T, timeoutMs: number): Promise<Extract<WorkerReply, { type: T }>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const box = this.inbox[index]!;
      const fatal = box.find((m) => m.type === 'fatal');
      if (fatal && fatal.type === 'fatal') throw new Error(`worker ${index}: ${fatal.error}`);
      const at = box.findIndex((m) => m.type === type);
      if (at >= 0) return box.splice(at, 1)[0] as Extract<WorkerReply, { type: T }>;
      if (this.children[index]!.exitCode !== null) throw new Error(`worker ${index} exited`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`worker ${index}: no '${type}' reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters[index] = () => {
          clearTimeout(t);
          this.waiters[index] = null;
          resolve();
        };
      });
    }
  }

  all<T extends WorkerReply['type']>(type: T, timeoutMs: number): Promise<Array<Extract<WorkerReply, { type: T }>>> {
    return Promise.all(this.children.map((_, i) => this.next(i, type, timeoutMs)));
  }

  /** Fewest in-order messages any reading receiver has got, over all workers (Infinity: none). */
  minProgress(): number {
    let min = Infinity;
    for (const value of this.progress) if (value !== null) min = Math.min(min, value);
    return min;
  }

  /** Drops unread replies (e.g. late ones from a scenario that failed). */
  clearInbox(): void {
    for (const box of this.inbox) box.length = 0;
    this.progress.fill(null);
  }

  async close(): Promise<void> {
    for (const c of this.children) {
      if (c.exitCode !== null || !c.connected) continue;
      c.send({ type: 'exit' });
    }
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => {
              c.kill('SIGKILL');
              resolve();
            }, 3000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}
