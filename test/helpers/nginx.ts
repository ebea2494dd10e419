// A real nginx (Debian's package) as a child process on a loopback port, for tests of the
// configurations the docs give: its own prefix, config, temp folders and logs in a scratch
// folder, stopped when the test ends.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort } from './ports.js';

/** The nginx binary: NGINX_PATH, else Debian's. */
export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';

/** Why nginx tests cannot run here, or undefined when they can. */
export function nginxMissing(): string | undefined {
  try {
    accessSync(NGINX, constants.X_OK);
    return undefined;
  } catch {
    return `nginx not found at ${NGINX} (install Debian's nginx package, or set NGINX_PATH)`;
  }
}

export interface Nginx {
  readonly port: number;
  /** Its scratch folder (config, logs, temp files, caches). */
  readonly dir: string;
  /** Lines of the access log so far, in the `$test_log` format given to `start`. */
  accessLog(): string[];
}

/** Lines logged per request: time, method, URI, status, cache status, upstream address. */
const LOG_FORMAT = `'$msec $request_method $request_uri $status $upstream_cache_status $upstream_addr'`;

/**
 * Starts nginx with `httpConfig` (the inside of `http { }`; it must listen on the port it is
 * given and may use the folder it is given) and waits until it accepts connections. Stopped
 * (SIGTERM, then SIGKILL of its process group) and its folder removed when the test ends.
 */
export async function startNginx(t: Test, httpConfig: (port: number, dir: string) => string): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'ws-nginx-'));
  const port = await freePort();
  const config = [
    // Workers run as this user (ignored, with a notice, when not started as root).
    `user ${userInfo().username};`,
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} notice;`,
    'events { worker_connections 512; }',
    'http {',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${join(dir, `${kind}_temp`)};`),
    `  log_format test_log ${LOG_FORMAT};`,
    `  access_log ${join(dir, 'access.log')} test_log;`,
    httpConfig(port, dir),
    '}',
    '',
  ].join('\n');
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config);
  const errorLog = (): string => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  // Its own process group, so teardown can end the master and its workers together.
  const child = spawn(NGINX, ['-e', join(dir, 'error.log'), '-p', `${dir}/`, '-c', file, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.on('data', (part: Buffer) => (stderr += part.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));
  t.teardown(async () => {
    if (running) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (running && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      }, 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (!running || Date.now() > deadline) {
      throw new Error(`nginx did not start (${running ? 'not listening after 10 s' : 'exited'}): ${stderr}${errorLog()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    dir,
    accessLog: () => {
      try {
        return readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter((line) => line !== '');
      } catch {
        return [];
      }
    },
  };
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
