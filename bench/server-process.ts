/**
 * Starts and stops the server under test as a child process tree.
 *
 * The command runs as `timeout -k 5 <lifetime> sh -c "<cmd>"`: `timeout`
 * puts the tree in its own process group and kills all of it when the
 * lifetime runs out, so no server outlives the bench even if the bench itself
 * is killed. Readiness = the TCP port accepts a connection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { processTree } from './proc-sampler.js';
import { tcpReachable } from './ws-client.js';

export interface ServerHandle {
  /** Pid of the `timeout` wrapper; the server proper is among its descendants. */
  pid: number;
  port: number;
  /** Last lines of the server's stdout/stderr, for error reports. */
  outputTail(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface StartOptions {
  /** Shell command with a {port} placeholder. */
  command: string;
  port: number;
  host: string;
  cwd: string;
  env?: NodeJS.ProcessEnv;
  lifetimeSeconds: number;
  readyTimeoutMs: number;
}

export async function startServer(opts: StartOptions): Promise<ServerHandle> {
  const cmd = opts.command.replaceAll('{port}', String(opts.port));
  const child: ChildProcess = spawn(
    'timeout',
    ['-k', '5', String(Math.ceil(opts.lifetimeSeconds)), 'sh', '-c', cmd],
    { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const handle: ServerHandle = {
    pid: child.pid ?? -1,
    port: opts.port,
    outputTail: () => tail,
    exited: () => exited,
    stop: async () => {
      if (exited) return;
      // One SIGTERM to each server process, not to `timeout`: it would relay the signal to the
      // child and to the group, and a second SIGTERM usually skips a graceful exit (and with
      // it a --cpu-prof profile). `timeout` exits when its child does.
      // Wait for the server processes themselves (they outlive an intermediate `sh`): the next
      // scenario must not share the CPU with this one's shutdown, and the server must not lose
      // its stdout pipe (EPIPE) before it is done.
      const tree = processTree(child.pid ?? -1).slice(1);
      for (const pid of tree) signal(pid, 'SIGTERM');
      const deadline = performance.now() + 5000;
      while (tree.some(alive) && performance.now() < deadline) await sleep(25);
      if (tree.some(alive) && child.pid) {
        signal(-child.pid, 'SIGKILL'); // the whole group `timeout` created
        for (const pid of tree) signal(pid, 'SIGKILL');
      }
      signal(child.pid ?? -1, 'SIGKILL');
      await Promise.race([exitPromise, sleep(2000)]);
    },
  };
  cleanupOnExit.add(handle);
  void exitPromise.then(() => cleanupOnExit.delete(handle));

  const deadline = performance.now() + opts.readyTimeoutMs;
  while (performance.now() < deadline) {
    if (exited) throw new Error(`server exited before listening: ${cmd}\n${tail}`);
    if (await tcpReachable(opts.host, opts.port, 500)) return handle;
    await sleep(50);
  }
  await handle.stop();
  throw new Error(`server not reachable on ${opts.host}:${opts.port} within ${opts.readyTimeoutMs} ms: ${cmd}\n${tail}`);
}

/** True while pid exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// Best effort: if the bench exits early, take running servers with it.
const cleanupOnExit = new Set<ServerHandle>();
process.once('exit', () => {
  for (const h of cleanupOnExit) {
    try {
      process.kill(h.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
});
