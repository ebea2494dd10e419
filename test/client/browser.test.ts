// The SDK's browser build, in a real headless Chromium (test/helpers/chromium.ts): the page
// imports dist/src/client/index.js as plain ES modules (no bundler) and uses the native
// WebSocket. Skipped when there is no Chromium (CHROMIUM_PATH, default /usr/bin/chromium).
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { StreamPublisher, StreamReceiver } from '../../src/client/index.js';
import { chromiumMissing, evaluate, launchBrowser, SKIP_REASON } from '../helpers/chromium.js';
import { startTestServer } from '../helpers/server.js';
import { ensureBuilt, root } from './helpers.js';

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

t.test('the SDK in a browser (Chromium, native WebSocket)', { skip: chromiumMissing ? SKIP_REASON : false }, async (t) => {
  await ensureBuilt();
  const { url } = await startTestServer(t);
  const pageUrl = await startStaticServer(t);
  const page = await (await launchBrowser(t)).newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(pageUrl);
  await evaluate(page, 'importing the SDK', `(async () => {
    window.sdk = await import('/src/client/index.js');
    ${PATTERN_SOURCE}
    window.pattern = pattern;
  })()`);
  t.equal(await evaluate(page, 'typeof process', 'typeof process'), 'undefined', 'a real browser page: no Node globals');

  await t.test('a browser publisher reaches a Node receiver byte-exact', async (t) => {
    const receiver = new StreamReceiver(url('/browser-pub/k'));
    await new Promise<void>((resolve) => receiver.once('open', () => resolve()));
    const sizes = [1000, 70_000, 3];
    const result = await evaluate<{ writes: boolean[] }>(page, 'publishing from the page', `(async () => {
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
    await evaluate(page, 'opening a receiver in the page', `(async () => {
      window.receiver = new sdk.StreamReceiver(${JSON.stringify(url('/browser-rx/k'))});
      window.ends = 0;
      receiver.on('end', () => ends++);
      await new Promise((resolve) => receiver.once('open', resolve));
    })()`);
    const publisher = await StreamPublisher.connect(url('/browser-rx/k'));
    const sizes = [500, 200_000, 1];
    for (const [index, size] of sizes.entries()) publisher.write(pattern(size, index));
    await publisher.end();
    const result = await evaluate<{ same: boolean[]; ends: number }>(page, 'receiving in the page', `(async () => {
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
    const error = await evaluate<Record<string, unknown>>(page, 'a refused connect in the page', `(async () => {
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
