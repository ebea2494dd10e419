import { once } from 'node:events';
import WebSocket from 'ws';

export interface Message {
  data: Buffer;
  isBinary: boolean;
}

export interface Closed {
  code: number;
  reason: string;
}

export class HttpRejection extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body}`);
  }
}

/**
 * A real WebSocket client that records everything it gets, so tests can await the next
 * message or the close without sleeping.
 */
export class TestClient {
  readonly messages: Message[] = [];
  /** Socket errors after the handshake (e.g. a reset after the close frame); the close code still tells what happened. */
  readonly errors: Error[] = [];
  readonly closed: Promise<Closed>;
  private waiters: Array<() => void> = [];
  private closeInfo: Closed | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      this.messages.push({ data, isBinary });
      this.wake();
    });
    socket.on('error', (error) => this.errors.push(error));
    this.closed = new Promise((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.wake();
        resolve(this.closeInfo);
      });
    });
  }

  /** Opens a connection; rejects with HttpRejection when the server refuses the upgrade. */
  static connect(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const socket = new WebSocket(url, { maxPayload: 1024 * 1024 * 1024, ...options });
    const client = new TestClient(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (part: string) => (body += part));
        response.on('end', () => reject(new HttpRejection(response.statusCode ?? 0, body)));
      });
      socket.once('error', reject);
    });
  }

  /** Resolves with the HTTP status and body of a refused upgrade; fails if it was accepted. */
  static async rejection(url: string, options: WebSocket.ClientOptions = {}): Promise<HttpRejection> {
    try {
      const client = await TestClient.connect(url, options);
      client.socket.terminate();
    } catch (error) {
      if (error instanceof HttpRejection) return error;
      throw error;
    }
    throw new Error(`expected ${url} to be refused, but it was accepted`);
  }

  get binaryMessages(): Buffer[] {
    return this.messages.filter((message) => message.isBinary).map((message) => message.data);
  }

  get textMessages(): string[] {
    return this.messages.filter((message) => !message.isBinary).map((message) => message.data.toString());
  }

  /** Waits until `predicate` holds over what was received, or fails if the socket closes first. */
  async until(predicate: (client: TestClient) => boolean, what = 'condition'): Promise<void> {
    while (!predicate(this)) {
      if (this.closeInfo !== undefined) {
        throw new Error(`connection closed (${this.closeInfo.code} ${this.closeInfo.reason}) before ${what}`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Waits for `count` binary messages in total. */
  async binary(count: number): Promise<Buffer[]> {
    await this.until((client) => client.binaryMessages.length >= count, `${count} binary messages`);
    return this.binaryMessages;
  }

  /** Total bytes of binary messages received so far. */
  get binaryBytes(): number {
    return this.binaryMessages.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  /** Sends and resolves once the bytes are handed to the kernel. */
  async send(data: Buffer | string): Promise<void> {
    await new Promise<void>((resolve, reject) => this.socket.send(data, (error) => (error ? reject(error) : resolve())));
  }

  async close(): Promise<Closed> {
    this.socket.close();
    return this.closed;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

export async function opened(socket: WebSocket): Promise<void> {
  if (socket.readyState !== WebSocket.OPEN) await once(socket, 'open');
}

/** Deterministic pseudo-random bytes, so byte-exact comparisons mean something. */
export function patternBytes(length: number, seed: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    buffer[i] = state & 0xff;
  }
  return buffer;
}

/**
 * Waits for server-side state that has no event of its own (e.g. the server noticing a
 * client that vanished), checking once per event-loop turn, at most `turns` times.
 */
export async function eventually(condition: () => boolean, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not reached');
}
