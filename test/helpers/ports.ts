import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/**
 * Ports handed out, by any test process: one is not free again until its user binds it (port,
 * admin port), and the files running side by side each pick ports. A port is reserved by
 * creating a file named after it here (exclusive create: one process wins); this process removes
 * its files when it exits, and a file older than STALE_MS (a process killed) is taken over.
 */
const reservations = join(tmpdir(), 'ws-stream-server-test-ports');
const STALE_MS = 10 * 60_000;
const reservedHere: string[] = [];
mkdirSync(reservations, { recursive: true });
process.once('exit', () => {
  for (const file of reservedHere) {
    try {
      unlinkSync(file);
    } catch {
      // Already gone.
    }
  }
});

/** Reserves `port` for this process among the test processes: false if another holds it. */
function reserve(port: number): boolean {
  const file = join(reservations, String(port));
  try {
    closeSync(openSync(file, 'wx'));
  } catch {
    try {
      if (reservedHere.includes(file) || Date.now() - statSync(file).mtimeMs < STALE_MS) return false;
      utimesSync(file, new Date(), new Date());
    } catch {
      return false;
    }
  }
  reservedHere.push(file);
  return true;
}

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
 * ephemeralLow) and never handed to two test processes at once (see reservations).
 * HTTP_PORT=0 means "plain HTTP off", so tests pick ports this way.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100 && highest > lowest; attempt++) {
    const port = lowest + Math.floor(Math.random() * (highest - lowest));
    if (!reserve(port)) continue;
    if ((await bindAndRelease(port)) !== undefined) return port;
  }
  // No room below the ephemeral range: whatever the kernel gives.
  const port = await bindAndRelease(0);
  if (port === undefined) throw new Error('freePort: no port to bind on 127.0.0.1');
  return port;
}
