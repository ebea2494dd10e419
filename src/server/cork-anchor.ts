import net from 'node:net';
import { unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { closeApp } from './listen.js';

/** How long opening the anchor may take before the server starts without it. */
const OPEN_TIMEOUT_MS = 2000;
let opened = 0;

/**
 * Works around a bug of uWebSockets.js 20.30 (uNetworking/uWebSockets#1928, fixed upstream by
 * PR #1929, after this build). An upgrade completed later, as a publish is once authorized
 * (worker threads, coordinator), must run inside a cork, and `res.cork()` is the library's way.
 * But when the upgrade reallocates the socket in place, that cork() then reads the HTTP state
 * of what is now the WebSocket: now and then it finds "close" there and drops the new
 * connection just after its open event (1006, no reason given). Upgrading outside any cork works
 * but prints a warning each time. So late upgrades run inside the cork of another socket,
 * whose cork() checks its own, valid, state: an HTTP request this thread makes to itself over
 * a Unix socket and never answers (the anchor). The listening socket is closed and removed as
 * soon as the request is held, so nothing else can connect to it.
 */
export class CorkAnchor {
  private held: uWS.HttpResponse | undefined;
  private readonly app = uWS.App();
  private client: net.Socket | undefined;

  /** Runs `task` corked: on the anchor if it is held, else on `res` itself. */
  cork(res: uWS.HttpResponse, task: () => void): void {
    if (this.held !== undefined) this.held.cork(task);
    else res.cork(task);
  }

  close(): void {
    this.held = undefined;
    this.client?.destroy();
    closeApp(this.app);
  }

  /** Holds the anchor; without one (the Unix socket cannot be made) corks fall back to `res.cork()`. */
  open(): Promise<void> {
    const path = join(tmpdir(), `ws-stream-server-${process.pid}-${threadId}-${++opened}.sock`);
    return new Promise((resolve) => {
      let listenSocket: uWS.us_listen_socket | false = false;
      const done = (): void => {
        clearTimeout(timer);
        if (listenSocket !== false) uWS.us_listen_socket_close(listenSocket);
        listenSocket = false;
        try {
          unlinkSync(path);
        } catch {
          // Never made, or already gone.
        }
        resolve();
      };
      const timer = setTimeout(() => {
        this.client?.destroy();
        done();
      }, OPEN_TIMEOUT_MS);
      this.app.any('/*', (res) => {
        res.onAborted(() => {
          if (this.held === res) this.held = undefined;
        });
        if (this.held === undefined) this.held = res;
        done();
      });
      this.app.listen_unix((socket) => {
        listenSocket = socket;
        if (socket === false) return done();
        const client = net.connect({ path }, () => client.write('GET / HTTP/1.1\r\nHost: anchor\r\n\r\n'));
        // The server's own connections keep the process alive, not this one.
        client.unref();
        client.on('error', done);
        this.client = client;
      }, path);
    });
  }
}
