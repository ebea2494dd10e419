/**
 * Plain-TCP fan-out relay: the ceiling reference for scenario (d).
 *
 * One writer, N readers, node `net`, no WebSocket framing: each connection
 * sends one role byte ('P' publisher, 'R' reader; readers get a 'K' ack once
 * registered), then the publisher's bytes are written verbatim to every
 * reader. It applies the ideal backpressure a relay can: reading from the
 * publisher pauses while any reader has more than HIGH_WATER bytes queued.
 *
 * Run as its own process (like the server under test) so its CPU and RSS are
 * sampled the same way: node dist/bench/tcp-baseline.js --port N [--host H]
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const HIGH_WATER = 1 << 20;

export interface TcpRelay {
  server: net.Server;
  close(): Promise<void>;
}

export function startTcpRelay(port: number, host: string): Promise<TcpRelay> {
  const readers = new Set<net.Socket>();
  let publisher: net.Socket | null = null;
  const blocked = new Set<net.Socket>(); // readers currently above HIGH_WATER

  const unblock = (r: net.Socket): void => {
    if (blocked.delete(r) && blocked.size === 0) publisher?.resume();
  };

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.once('data', (first: Buffer) => {
      const role = first[0];
      const rest = first.subarray(1);
      if (role === 0x52 /* R */) {
        readers.add(socket);
        socket.on('close', () => {
          readers.delete(socket);
          unblock(socket);
        });
        socket.write('K');
        socket.resume(); // readers send nothing more; keep EOF observable
      } else if (role === 0x50 /* P */ && publisher === null) {
        publisher = socket;
        const forward = (chunk: Buffer): void => {
          for (const r of readers) {
            // Block only on a real backlog: node's 16 KiB highWaterMark would stall needlessly.
            if (!r.write(chunk) && r.writableLength > HIGH_WATER && !blocked.has(r)) {
              blocked.add(r);
              r.once('drain', () => unblock(r));
            }
          }
          if (blocked.size > 0) socket.pause();
        };
        if (rest.length > 0) forward(rest);
        socket.on('data', forward);
        socket.on('close', () => {
          publisher = null;
          for (const r of readers) r.end(); // mirror "publisher ends => receivers closed"
        });
      } else {
        socket.destroy();
      }
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 4096 }, () =>
      resolve({
        server,
        close: () =>
          new Promise<void>((done) => {
            for (const r of readers) r.destroy();
            publisher?.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required');
  const relay = await startTcpRelay(port, values.host ?? '127.0.0.1');
  console.log(`tcp-baseline Listening on ${values.host}:${port}`);
  const stop = (): void => {
    void relay.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
