// A publish authorized later (by the main thread with worker threads; by the coordinator) is
// upgraded outside the library's request callback, corked on the thread's anchor (see
// src/server/cork-anchor.ts: uWebSockets.js 20.30 dropped such connections now and then when
// corked on their own request, close 1006 right after the open event).
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import t from 'tap';
import { TestClient, patternBytes } from '../helpers/client.js';
import { startThreaded } from './helpers.js';

/** A WebSocket handshake on a raw socket with `connection` as its Connection header: the response's head and body. */
function rawHandshake(port: number, path: string, connection: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: ${connection}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`),
    );
    let answer = '';
    socket.on('data', (data) => {
      answer += data.toString('latin1');
      // A complete refusal (its body has a Content-Length), or the start of an upgrade.
      if (/\r\n\r\n[^]*\.$/.test(answer) || answer.startsWith('HTTP/1.1 101')) socket.destroy();
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

t.test('publishes authorized by the main thread, hundreds at once beside waiting viewers: every one streams', async (t) => {
  const { onThread } = await startThreaded(t, 2, { gopCacheSizeMb: '0' });
  const channels = 300;
  const thread = (index: number): number => (index % 2) + 1;
  const viewers = await Promise.all(Array.from({ length: channels }, (_, index) => TestClient.connect(onThread(thread(index), `/many${index}/k/receive`))));
  // Each publisher on its viewer's thread, all asking at once.
  const publishers = await Promise.all(Array.from({ length: channels }, (_, index) => TestClient.connect(onThread(thread(index), `/many${index}/k/publish`))));
  const chunks = publishers.map((_, index) => patternBytes(200, index + 1));
  for (const [index, publisher] of publishers.entries()) publisher.socket.send(chunks[index]!);
  await Promise.all(viewers.map((viewer, index) => Promise.race([viewer.until((client) => client.binaryBytes >= 200, `viewer ${index}: its chunk`), viewer.closed])));
  const closed = publishers.flatMap((publisher, index) => (publisher.socket.readyState === publisher.socket.OPEN ? [] : [index]));
  t.same(closed, [], `every one of ${channels} publishers is still connected`);
  const missing = viewers.flatMap((viewer, index) => (viewer.binaryMessages[0]?.equals(chunks[index]!) === true ? [] : [index]));
  t.same(missing, [], 'every viewer got its publisher\'s chunk');
  await Promise.all(publishers.map((publisher) => publisher.close()));
  await Promise.all(viewers.map((viewer) => viewer.closed));
  t.same(
    readdirSync(tmpdir()).filter((name) => name.startsWith(`ws-stream-server-${process.pid}-`)),
    [],
    'the anchors\' Unix sockets are gone from the file system once connected',
  );
});

t.test('a handshake whose Connection header is not Upgrade is refused with 400, and holds nothing', async (t) => {
  const { app, onThread } = await startThreaded(t, 2);
  const url = new URL(onThread(1, '/'));
  for (const path of ['/closing/k/publish', '/closing/k/receive']) {
    const answer = await rawHandshake(Number(url.port), path, 'close');
    t.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/, `${path}: 400`);
    t.match(answer, /\r\n\r\nBad WebSocket handshake\.$/, `${path}: the body says why`);
  }
  // The library would have upgraded them, then ended the connection: nothing may stay behind.
  const publisher = await TestClient.connect(onThread(1, '/closing/k/publish'));
  t.pass('the channel is free: the next publisher is accepted');
  await publisher.close();
  t.equal(app.cluster!.publications().length, 0, 'and once it ends, nothing is published');
  t.match(await rawHandshake(Number(url.port), '/closing/k/publish', 'keep-alive, Upgrade'), /^HTTP\/1\.1 101 /, 'a list with Upgrade in it (as Firefox sends) is a handshake');
});
