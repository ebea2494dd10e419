import type { IncomingHttpHeaders } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';

/** A control message as the coordinator sees it (parsed here independently of the server's code). */
export interface Received {
  type: string;
  args: Record<string, string>;
}

export function parseControl(text: string): Received {
  const [first = '', ...rest] = text.split('\n');
  const args: Record<string, string> = {};
  for (const line of rest) {
    if (line.trim() === '') break;
    const colon = line.indexOf(':');
    args[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { type: first.trim().toUpperCase(), args };
}

export type PublishPolicy = (request: Received) => { accept: string } | 'deny' | 'ignore';

interface Connection {
  socket: WebSocket;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * A coordinator written for the tests: a WebSocket server speaking the control protocol on
 * 127.0.0.1. It answers PUBLISH-REQUEST with `policy` and records everything it receives.
 */
export class TestCoordinator {
  readonly received: Received[] = [];
  readonly connections: Connection[] = [];
  policy: PublishPolicy = () => ({ accept: 'stream-1' });
  private waiters: Array<() => void> = [];

  private constructor(private readonly server: WebSocketServer) {
    server.on('connection', (socket, request) => {
      this.connections.push({ socket, url: request.url ?? '', headers: request.headers });
      this.wake();
      socket.on('message', (data, isBinary) => {
        if (isBinary) return;
        const message = parseControl(data.toString());
        this.received.push(message);
        if (message.type === 'PUBLISH-REQUEST') this.answer(socket, message);
        this.wake();
      });
    });
  }

  static async start(port = 0): Promise<TestCoordinator> {
    const server = new WebSocketServer({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return new TestCoordinator(server);
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  get baseUrl(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  get current(): WebSocket {
    const socket = this.connections.at(-1)?.socket;
    if (socket === undefined) throw new Error('no control connection');
    return socket;
  }

  send(text: string | Buffer): void {
    this.current.send(text);
  }

  /** Waits until `count` control connections have been made in total. */
  async connection(count = 1): Promise<Connection> {
    await this.until(() => this.connections.length >= count);
    return this.connections[count - 1]!;
  }

  /** Waits for the `index`-th (0-based, counting all so far) message of `type`. */
  async message(type: string, index = 0): Promise<Received> {
    await this.until(() => this.received.filter((message) => message.type === type).length > index);
    return this.received.filter((message) => message.type === type)[index]!;
  }

  async until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async stop(): Promise<void> {
    for (const { socket } of this.connections) socket.terminate();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private answer(socket: WebSocket, request: Received): void {
    const decision = this.policy(request);
    if (decision === 'ignore') return;
    const id = request.args['request-id'] ?? '';
    const channel = request.args['stream-channel'] ?? '';
    socket.send(
      decision === 'deny'
        ? `PUBLISH-DENY\nRequest-Id: ${id}\nStream-Channel: ${channel}`
        : `PUBLISH-ACCEPT\nRequest-Id: ${id}\nStream-Channel: ${channel}\nStream-Id: ${decision.accept}`,
    );
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
