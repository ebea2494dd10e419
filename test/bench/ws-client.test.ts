import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { makeSelfSignedCertificate } from '../../bench/certificate.js';
import { acceptFor, openWebSocket, tcpReachable, upgradeRequest } from '../../bench/ws-client.js';

/** A one-shot fake server: answers the upgrade request with whatever `respond` returns. */
async function fakeServer(respond: (request: string) => Buffer | string, secure?: tls.TlsOptions): Promise<{ port: number; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const onConnection = (s: net.Socket): void => {
    sockets.add(s);
    let head = '';
    s.on('data', (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      requests.push(head);
      s.write(respond(head));
      head = '';
    });
    s.on('error', () => undefined);
  };
  const server = secure ? tls.createServer(secure, onConnection) : net.createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const keyOf = (request: string): string => /Sec-WebSocket-Key: (\S+)/.exec(request)?.[1] ?? '';

t.test('accept key matches the RFC 6455 example', async (t) => {
  t.equal(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

t.test('upgrade request carries the path and the mandatory headers', async (t) => {
  const req = upgradeRequest('127.0.0.1', 8080, '/chan/key/receive', 'abc');
  t.match(req, /^GET \/chan\/key\/receive HTTP\/1\.1\r\n/);
  t.match(req, /\r\nHost: 127\.0\.0\.1:8080\r\n/);
  t.match(req, /\r\nUpgrade: websocket\r\n/);
  t.match(req, /\r\nSec-WebSocket-Version: 13\r\n/);
  t.ok(req.endsWith('\r\n\r\n'));
  t.match(upgradeRequest('::1', 80, '/', 'k'), /\r\nHost: \[::1\]:80\r\n/, 'IPv6 host is bracketed');
});

t.test('handshake completes and keeps bytes that follow the 101 head', async (t) => {
  const srv = await fakeServer((req) =>
    Buffer.concat([
      Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(keyOf(req))}\r\n\r\n`),
      Buffer.from([0x81, 0x01, 0x68]), // a text frame "h" in the same segment
    ]),
  );
  t.teardown(srv.close);
  const { socket, rest } = await openWebSocket({ host: '127.0.0.1', port: srv.port, path: '/c/k/receive', timeoutMs: 5000 });
  t.same([...rest], [0x81, 0x01, 0x68], 'leftover frame bytes handed to the caller');
  t.equal(socket.isPaused(), true, 'socket paused until the caller attaches its parser');
  t.match(srv.requests[0], /^GET \/c\/k\/receive /);
  socket.destroy();
});

t.test('wss: the handshake runs over TLS with a self-signed certificate', async (t) => {
  const dir = t.testdir({});
  const { certFile, keyFile } = await makeSelfSignedCertificate(dir, 'bench');
  const srv = await fakeServer(
    (req) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(keyOf(req))}\r\n\r\n`,
    { cert: readFileSync(certFile), key: readFileSync(keyFile) },
  );
  t.teardown(srv.close);
  const { socket } = await openWebSocket({ host: '127.0.0.1', port: srv.port, path: '/c/k/publish', timeoutMs: 5000, tls: true });
  t.ok(socket instanceof tls.TLSSocket && socket.encrypted, 'a TLS socket');
  t.match(srv.requests[0], /^GET \/c\/k\/publish /, 'the upgrade request arrived decrypted');
  socket.destroy();
  await t.rejects(openWebSocket({ host: '127.0.0.1', port: srv.port, path: '/', timeoutMs: 5000 }), /./, 'a plain client gets no 101 from a TLS server');
});

t.test('handshake rejects a refusal and a wrong accept key', async (t) => {
  const refused = await fakeServer(() => 'HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n');
  t.teardown(refused.close);
  await t.rejects(openWebSocket({ host: '127.0.0.1', port: refused.port, path: '/', timeoutMs: 5000 }), /upgrade refused: HTTP\/1\.1 429/);

  const wrong = await fakeServer(() => 'HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n');
  t.teardown(wrong.close);
  await t.rejects(openWebSocket({ host: '127.0.0.1', port: wrong.port, path: '/', timeoutMs: 5000 }), /bad Sec-WebSocket-Accept/);
});

t.test('tcpReachable tells an open port from a closed one', async (t) => {
  const srv = await fakeServer(() => '');
  t.equal(await tcpReachable('127.0.0.1', srv.port, 2000), true);
  const port = srv.port;
  await srv.close();
  t.equal(await tcpReachable('127.0.0.1', port, 2000), false);
});
