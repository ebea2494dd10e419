/**
 * Minimal WebSocket client pieces on raw `net` sockets: the HTTP upgrade
 * handshake and masked client frames. Kept separate from the parser so the
 * load generator stays a thin loop around socket events.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { Opcode } from './frame-parser.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_RESPONSE_HEAD = 16 * 1024;

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

export function upgradeRequest(host: string, port: number, path: string, key: string): string {
  const hostHeader = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return (
    `GET ${path} HTTP/1.1\r\n` +
    `Host: ${hostHeader}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n` +
    'Sec-WebSocket-Version: 13\r\n\r\n'
  );
}

/** Bytes of a masked client frame header (2..14 bytes) for a payload length. */
export function clientHeaderLength(payloadLength: number): number {
  return (payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10) + 4;
}

/**
 * Writes a FIN frame header with the mask bit and key into `out` at `offset`;
 * returns the payload offset. The caller supplies already-masked payload bytes.
 */
export function writeClientHeader(
  out: Buffer,
  offset: number,
  opcode: number,
  payloadLength: number,
  maskKey: Buffer,
): number {
  let p = offset;
  out[p++] = 0x80 | opcode;
  if (payloadLength < 126) {
    out[p++] = 0x80 | payloadLength;
  } else if (payloadLength < 65536) {
    out[p++] = 0x80 | 126;
    out.writeUInt16BE(payloadLength, p);
    p += 2;
  } else {
    out[p++] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), p);
    out.writeUInt32BE(payloadLength >>> 0, p + 4);
    p += 8;
  }
  maskKey.copy(out, p, 0, 4);
  return p + 4;
}

/** XORs data[start, end) with the key, the key phase aligned to `start`. */
export function maskInPlace(data: Buffer, start: number, end: number, maskKey: Buffer, phase = 0): void {
  for (let i = start; i < end; i++) data[i]! ^= maskKey[(i - start + phase) & 3]!;
}

/** A complete masked frame with a fresh random key (small/control frames). */
export function encodeClientFrame(opcode: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const key = randomBytes(4);
  const frame = Buffer.allocUnsafe(clientHeaderLength(body.length) + body.length);
  const at = writeClientHeader(frame, 0, opcode, body.length, key);
  body.copy(frame, at);
  maskInPlace(frame, at, frame.length, key);
  return frame;
}

export const HEARTBEAT_FRAME = (): Buffer => encodeClientFrame(Opcode.Text, 'h');

export interface OpenOptions {
  host: string;
  port: number;
  path: string;
  localAddress?: string;
  timeoutMs: number;
  /** wss: TLS first (the bench's certificate is self-signed, so it is not verified). */
  tls?: boolean;
}

export interface OpenSocket {
  socket: net.Socket;
  /** Bytes that followed the 101 response head (already WebSocket frames). */
  rest: Buffer;
}

/** Connects and completes the upgrade; rejects on non-101 or a bad accept key. */
export function openWebSocket(opts: OpenOptions): Promise<OpenSocket> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const target = { host: opts.host, port: opts.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) };
    const socket = opts.tls ? tls.connect({ ...target, rejectUnauthorized: false, servername: 'localhost' }) : net.connect(target);
    socket.setNoDelay(true);
    let head: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`handshake timeout after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
    };
    function fail(err: Error): void {
      cleanup();
      socket.destroy();
      reject(err);
    }
    function onClose(): void {
      fail(new Error('connection closed during handshake'));
    }
    function onData(chunk: Buffer): void {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_RESPONSE_HEAD) fail(new Error('oversized handshake response'));
        return;
      }
      const lines = head.toString('latin1', 0, end).split('\r\n');
      const status = lines[0] ?? '';
      if (!/^HTTP\/1\.1 101 /.test(status)) return fail(new Error(`upgrade refused: ${status}`));
      const accept = lines
        .find((l) => l.toLowerCase().startsWith('sec-websocket-accept:'))
        ?.slice('sec-websocket-accept:'.length)
        .trim();
      if (accept !== acceptFor(key)) return fail(new Error('bad Sec-WebSocket-Accept'));
      cleanup();
      // Paused so no frame is lost before the caller attaches its parser; it calls resume().
      socket.pause();
      resolve({ socket, rest: head.subarray(end + 4) });
    }
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.on(opts.tls ? 'secureConnect' : 'connect', () => socket.write(upgradeRequest(opts.host, opts.port, opts.path, key)));
  });
}

/** Resolves once a TCP connection to host:port is accepted (server readiness probe). */
export function tcpReachable(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => done(false), timeoutMs);
    function done(ok: boolean): void {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    }
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
