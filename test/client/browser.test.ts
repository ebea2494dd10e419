// The SDK's browser build, in a real headless Chromium driven over the DevTools protocol: the
// page imports dist/src/client/index.js as plain ES modules (no bundler) and uses the native
// WebSocket. Skipped when there is no Chromium (CHROMIUM_PATH, default /usr/bin/chromium).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import WebSocket from 'ws';
import { StreamPublisher, StreamReceiver } from '../../src/client/index.js';
import { startTestServer } from '../helpers/server.js';
import { ensureBuilt, root } from './helpers.js';

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = ((): boolean => {
  try {
    accessSync(chromium, constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();

/** The same bytes on both sides: chunk `index` of `length` bytes. */
const pattern = (length: number, index: number): Uint8Array => Uint8Array.from({ length }, (_, j) => (j * 7 + index) & 255);
const PATTERN_SOURCE = 'const pattern = (length, index) => Uint8Array.from({ length }, (_, j) => (j * 7 + index) & 255);';

/** Serves dist/src/ (the built SDK) and an empty page, on 127.0.0.1. */
async function startStaticServer(t: Test): Promise<string> {
  const base = join(root, 'dist', 'src');
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (path === '/') {
      response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>sdk</title>');
      return;
    }
    const file = normalize(join(base, path.replace(/^\/src\//, '/')));
    if (!path.startsWith('/src/') || !file.startsWith(base)) return void response.writeHead(404).end();
    readFile(file).then(
      (body) => response.writeHead(200, { 'content-type': 'text/javascript' }).end(body),
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    // close() alone waits for every connection to end, and Chromium keeps connections it opened
    // ahead of need (no request on them yet) for as long as it lives: drop them all.
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    return closed;
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** A page of a fresh headless Chromium; evaluate() runs an async expression there and returns its JSON value. */
async function launchPage(t: Test): Promise<{ evaluate<T>(expression: string): Promise<T>; navigate(url: string): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'ws-stream-chromium-'));
  const browser = spawn(
    chromium,
    [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  const exited = new Promise((resolve) => browser.once('exit', resolve));
  t.teardown(async () => {
    process.kill(-browser.pid!, 'SIGTERM'); // The group this test started: the browser and its helpers.
    await exited;
    await rm(profile, { recursive: true, force: true });
  });
  const port = await new Promise<string>((resolve, reject) => {
    let text = '';
    browser.stderr!.on('data', (data: Buffer) => {
      text += data.toString();
      const match = /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(text);
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`Chromium exited: ${text}`)));
  });
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ type: string; webSocketDebuggerUrl: string }>;
  const page = targets.find((target) => target.type === 'page')!;
  const socket = new WebSocket(page.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  t.teardown(() => socket.close());
  let nextId = 1;
  const pending = new Map<number, (message: { result?: unknown; error?: { message: string } }) => void>();
  const events: Array<{ method: string; resolve: () => void }> = [];
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as { id?: number; method?: string; result?: unknown; error?: { message: string } };
    if (message.id !== undefined) pending.get(message.id)?.(message);
    for (const waiter of events.filter((event) => event.method === message.method)) {
      events.splice(events.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  const send = async (method: string, params: object = {}): Promise<unknown> => {
    const id = nextId++;
    socket.send(JSON.stringify({ id, method, params }));
    const reply = await new Promise<{ result?: unknown; error?: { message: string } }>((resolve) => pending.set(id, resolve));
    if (reply.error) throw new Error(`${method}: ${reply.error.message}`);
    return reply.result;
  };
  await send('Page.enable');
  return {
    async navigate(url) {
      const loaded = new Promise<void>((resolve) => events.push({ method: 'Page.loadEventFired', resolve }));
      await send('Page.navigate', { url });
      await loaded;
    },
    async evaluate<T>(expression: string) {
      const result = (await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as {
        result: { value?: T };
        exceptionDetails?: { exception?: { description?: string }; text: string };
      };
      if (result.exceptionDetails) throw new Error(result.exceptionDetails.exception?.description ?? result.exceptionDetails.text);
      return result.result.value as T;
    },
  };
}

t.test('the SDK in a browser (Chromium, native WebSocket)', { skip: available ? false : `no Chromium at ${chromium} (set CHROMIUM_PATH)` }, async (t) => {
  await ensureBuilt();
  const { url } = await startTestServer(t);
  const page = await launchPage(t);
  await page.navigate(await startStaticServer(t));
  await page.evaluate(`(async () => {
    window.sdk = await import('/src/client/index.js');
    ${PATTERN_SOURCE}
    window.pattern = pattern;
  })()`);
  t.equal(await page.evaluate('typeof process'), 'undefined', 'a real browser page: no Node globals');

  await t.test('a browser publisher reaches a Node receiver byte-exact', async (t) => {
    const receiver = new StreamReceiver(url('/browser-pub/k'));
    await new Promise<void>((resolve) => receiver.once('open', () => resolve()));
    const sizes = [1000, 70_000, 3];
    const result = await page.evaluate<{ writes: boolean[] }>(`(async () => {
      const publisher = await sdk.StreamPublisher.connect(${JSON.stringify(url('/browser-pub/k'))});
      const writes = ${JSON.stringify(sizes)}.map((size, index) => publisher.write(pattern(size, index)));
      await publisher.end();
      return { writes };
    })()`);
    t.same(result.writes, [true, true, true]);
    const got: Buffer[] = [];
    for await (const chunk of receiver) got.push(Buffer.from(chunk));
    t.same(got, sizes.map((size, index) => Buffer.from(pattern(size, index))));
  });

  await t.test('a browser receiver gets a Node publisher\'s stream and its end', async (t) => {
    await page.evaluate(`(async () => {
      window.receiver = new sdk.StreamReceiver(${JSON.stringify(url('/browser-rx/k'))});
      window.ends = 0;
      receiver.on('end', () => ends++);
      await new Promise((resolve) => receiver.once('open', resolve));
    })()`);
    const publisher = await StreamPublisher.connect(url('/browser-rx/k'));
    const sizes = [500, 200_000, 1];
    for (const [index, size] of sizes.entries()) publisher.write(pattern(size, index));
    await publisher.end();
    const result = await page.evaluate<{ same: boolean[]; ends: number }>(`(async () => {
      const same = [];
      let index = 0;
      for await (const chunk of receiver) {
        const expected = pattern(${JSON.stringify(sizes)}[index], index++);
        same.push(chunk.length === expected.length && chunk.every((byte, i) => byte === expected[i]));
      }
      return { same, ends };
    })()`);
    t.same(result, { same: [true, true, true], ends: 1 });
  });

  await t.test('a refusal in a browser is CONNECTION_FAILED: browsers do not expose the HTTP answer', async (t) => {
    const holder = await StreamPublisher.connect(url('/browser-busy/k'));
    const error = await page.evaluate<Record<string, unknown>>(`(async () => {
      try {
        await sdk.StreamPublisher.connect(${JSON.stringify(url('/browser-busy/k'))});
        return { code: 'none' };
      } catch (error) {
        return { name: error.name, code: error.code, category: error.category, status: error.status ?? null, closeCode: error.closeCode };
      }
    })()`);
    t.same(error, { name: 'StreamClientError', code: 'CONNECTION_FAILED', category: 'connection', status: null, closeCode: 1006 });
    await holder.end();
  });
});
