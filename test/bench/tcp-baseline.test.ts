import net from 'node:net';
import t from 'tap';
import { startTcpRelay } from '../../bench/tcp-baseline.js';

function connect(port: number, role: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.write(role);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** A reader registered with the relay: resolves after its 'K' ack. */
async function reader(port: number): Promise<net.Socket> {
  const s = await connect(port, 'R');
  const ack = await new Promise<Buffer>((resolve) => s.once('data', resolve));
  if (ack.length !== 1 || ack[0] !== 0x4b) throw new Error(`unexpected ack ${ack.toString('hex')}`);
  return s;
}

/** Reads until `n` bytes arrived or the socket ends. */
function readBytes(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const done = (): void => resolve(Buffer.concat(parts));
    s.on('data', (c: Buffer) => {
      parts.push(c);
      got += c.length;
      if (got >= n) done();
    });
    s.once('end', done);
  });
}

t.test('relay fans the publisher stream out byte-exact to every reader', async (t) => {
  const relay = await startTcpRelay(0, '127.0.0.1');
  t.teardown(() => relay.close());
  const addr = relay.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  const readers = await Promise.all([reader(port), reader(port), reader(port)]);
  const payload = Buffer.alloc(3 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
  const reads = readers.map((r) => readBytes(r, payload.length));
  const pub = await connect(port, 'P');
  pub.end(payload);
  const got = await Promise.all(reads);
  for (const [i, g] of got.entries()) {
    t.ok(g.equals(payload), `reader ${i} got all ${payload.length} bytes in order`);
  }
  for (const r of readers) r.destroy();
});
