import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * The ports the kernel gives outgoing connections and `listen(0)` (Linux default 32768-60999).
 * A port found free there may be taken by any client socket of the files running side by side
 * before the server that asked binds it ("address in use"): freePort() picks below it.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 32768;
  } catch {
    return 32768;
  }
}

const highest = ephemeralLow() - 1;
const lowest = Math.max(1024, highest - 12_000);

/** Ports this process handed out: one is not free again until its user binds it (port, admin port). */
const handedOut = new Set<number>();

/** Binds `port` on 127.0.0.1 (0: the kernel's choice) and lets go: the port bound, or undefined if taken. */
function bindAndRelease(port: number): Promise<number | undefined> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A TCP port free on 127.0.0.1 right now, chosen at random below the ephemeral range (see
 * ephemeralLow) and never twice by one process. HTTP_PORT=0 means "plain HTTP off", so tests
 * pick ports this way.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100 && highest > lowest; attempt++) {
    const port = lowest + Math.floor(Math.random() * (highest - lowest));
    if (handedOut.has(port) || (await bindAndRelease(port)) === undefined) continue;
    handedOut.add(port);
    return port;
  }
  // No room below the ephemeral range: whatever the kernel gives.
  const port = await bindAndRelease(0);
  if (port === undefined) throw new Error('freePort: no port to bind on 127.0.0.1');
  return port;
}
