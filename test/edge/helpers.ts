import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { freePort } from '../helpers/ports.js';
import { workersEnv } from '../helpers/server.js';

const bin = fileURLToPath(new URL('../../bin/ws-stream-server.js', import.meta.url));

/** One real server process (the built CLI) on 127.0.0.1, with its admin API. */
export interface ServerProcess {
  readonly port: number;
  readonly adminPort: number;
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  url(path: string): string;
  /** GET on the admin API, parsed JSON (or text for /metrics). */
  admin(path: string): Promise<unknown>;
  adminText(path: string): Promise<string>;
  output(): string;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
}

export interface ServerSpec {
  readonly env?: Record<string, string>;
  /** Reuse a port (a restarted origin). */
  readonly port?: number;
  readonly adminPort?: number;
  /** The ws:// (or wss://) scheme clients use; TLS needs SSL_* in env. */
  readonly tls?: boolean;
}

/** Starts `bin/ws-stream-server.js` (build first) and waits until it listens; killed at teardown. */
export async function startServer(t: Test, spec: ServerSpec = {}): Promise<ServerProcess> {
  const port = spec.port ?? (await freePort());
  const adminPort = spec.adminPort ?? (await freePort());
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    BIND_ADDRESS: '127.0.0.1',
    ADMIN_ADDRESS: `127.0.0.1:${adminPort}`,
    MAX_IP_CONCURRENT_CONNECTIONS: '0',
    DISABLE_TEST_CLIENT: 'YES',
    ...workersEnv,
    ...(spec.tls ? { HTTP_PORT: '0', SSL_PORT: String(port) } : { HTTP_PORT: String(port) }),
    ...spec.env,
  };
  const child = spawn(process.execPath, [bin], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (part: string) => (output += part));
  child.stderr.setEncoding('utf8').on('data', (part: string) => (output += part));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.teardown(() => {
    // A failed test shows what the server said (as failureLog does for servers in this process).
    if (!t.passing()) for (const line of output.trimEnd().split('\n').slice(-80)) t.comment(`server :${port}: ${line}`);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (output.includes(`[ADMIN] Listening on 127.0.0.1:${adminPort}`)) resolve();
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    void exited.then((code) => reject(new Error(`server exited early with ${code}: ${output}`)));
  });
  const scheme = spec.tls ? 'wss' : 'ws';
  const adminText = async (path: string): Promise<string> => {
    const response = await fetch(`http://127.0.0.1:${adminPort}${path}`);
    return response.text();
  };
  return {
    port,
    adminPort,
    process: child,
    exited,
    url: (path) => `${scheme}://127.0.0.1:${port}${path}`,
    admin: async (path) => JSON.parse(await adminText(path)) as unknown,
    adminText,
    output: () => output,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

interface ChannelInfo {
  receivers: { total: number };
  cacheBytes: number;
  publishing: boolean;
}

/** The channel as the server's admin API shows it, or undefined when the server has no such channel. */
export async function channelInfo(server: ServerProcess, channel: string): Promise<ChannelInfo | undefined> {
  const response = await fetch(`http://127.0.0.1:${server.adminPort}/api/v1/channels/${channel}`);
  if (response.status === 404) return undefined;
  return (await response.json()) as ChannelInfo;
}

/** Receivers of the channel on that server (0 when it has no such channel). */
export async function receiverCount(server: ServerProcess, channel: string): Promise<number> {
  return (await channelInfo(server, channel))?.receivers.total ?? 0;
}

export interface RelayInfo {
  channel: string;
  upstream: string;
  state: string;
  viewers: number;
  bytesIn: number;
  messagesIn: number;
  reconnects: number;
  lingering: boolean;
}

export async function relays(server: ServerProcess): Promise<RelayInfo[]> {
  const summary = (await server.admin('/api/v1/server')) as { edge: { relays: RelayInfo[] } | null };
  if (summary.edge === null) throw new Error('not an edge');
  return summary.edge.relays;
}

/**
 * Waits for state in another process, which has no event this process can wait on: polls
 * every 20 ms up to a deadline.
 */
export async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, deadlineMs = 15_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
