import { EventEmitter } from 'node:events';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import type { Logger } from '../log/logger.js';
import { Backoff } from './backoff.js';
import { ControlMessage } from './control-message.js';
import type { PublishAuthorizer, PublishDecision, PublishRequest, StreamController } from './authorizer.js';

export interface ControlClientOptions {
  /** CONTROL_BASE_URL; the client connects to `/ws/control/wss` on it. */
  readonly baseUrl: string;
  /** CONTROL_SECRET: signs the HS256 token; empty sends no token. */
  readonly secret: string;
  readonly externalIp: string;
  readonly externalPort: string;
  readonly externalSsl: boolean;
  readonly requestTimeoutMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly heartbeatMs: number;
  /** A control connection silent this long is considered dead. */
  readonly deadAfterMs: number;
  /** Skip certificate verification of a wss:// coordinator. */
  readonly insecureTls: boolean;
  readonly logger: Logger;
}

export type ControlState = 'idle' | 'connecting' | 'connected' | 'closed';

/** How a publish request ended, for metrics. */
export type RequestOutcome = 'accepted' | 'denied' | 'timeout' | 'disconnected' | 'unavailable';

interface PendingRequest {
  readonly channel: string;
  readonly finish: (decision: PublishDecision, outcome: RequestOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

const DENY: PublishDecision = { accepted: false };

/** The control path of the coordinator, relative to CONTROL_BASE_URL, as the Go server uses. */
export const CONTROL_PATH = '/ws/control/wss';

export function controlUrl(baseUrl: string): string {
  return new URL(CONTROL_PATH, baseUrl).toString();
}

/**
 * The connection to the coordinator: asks it who may publish, tells it when streams end, and
 * obeys its STREAM-KILL. Fails closed: while disconnected, every publish is denied.
 *
 * Events: `connected`, `disconnected`, `message` (each parsed incoming message), `answered`
 * (each publish request's outcome and duration in seconds).
 */
export class ControlClient
  extends EventEmitter<{ connected: []; disconnected: []; message: [ControlMessage]; answered: [RequestOutcome, number] }>
  implements PublishAuthorizer
{
  private socket: WebSocket | undefined;
  private currentState: ControlState = 'idle';
  private readonly pending = new Map<string, PendingRequest>();
  private nextRequestId = 1;
  private readonly backoff: Backoff;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastReceived = 0;
  private controller: StreamController | undefined;
  readonly url: string;

  constructor(private readonly options: ControlClientOptions) {
    super();
    this.url = controlUrl(options.baseUrl);
    this.backoff = new Backoff(options.reconnectMinMs, options.reconnectMaxMs);
  }

  get state(): ControlState {
    return this.currentState;
  }

  /** Connects in the background; `controller` is the server whose publishers STREAM-KILL closes. */
  start(controller: StreamController): void {
    this.controller = controller;
    if (this.currentState === 'idle') void this.connect();
  }

  async close(): Promise<void> {
    this.currentState = 'closed';
    clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    this.denyAllPending();
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined && socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.terminate();
      await closed;
    }
  }

  authorize(request: PublishRequest): Promise<PublishDecision> | PublishDecision {
    if (this.currentState !== 'connected') {
      this.options.logger.warn(`[CONTROL] Publish on '${request.channel}' refused: coordinator not connected`);
      this.emit('answered', 'unavailable', 0);
      return DENY;
    }
    const requestId = String(this.nextRequestId++);
    const started = performance.now();
    return new Promise((resolve) => {
      const finish = (decision: PublishDecision, outcome: RequestOutcome): void => {
        this.emit('answered', outcome, (performance.now() - started) / 1000);
        resolve(decision);
      };
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        this.options.logger.warn(`[CONTROL] Publish request ${requestId} timed out`);
        finish(DENY, 'timeout');
      }, this.options.requestTimeoutMs);
      this.pending.set(requestId, { channel: request.channel, finish, timer });
      this.send(
        new ControlMessage('PUBLISH-REQUEST', {
          'Request-ID': requestId,
          'Stream-Channel': request.channel,
          'Stream-Key': request.key,
          'User-IP': request.ip,
        }),
      );
    });
  }

  published(channel: string, streamId: string): void {
    this.send(new ControlMessage('PUBLISH-END', { 'Stream-Channel': channel, 'Stream-ID': streamId }));
  }

  private async connect(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.currentState = 'connecting';
    const headers: Record<string, string> = {};
    if (this.options.secret !== '') headers['x-control-auth-token'] = await this.token();
    if (this.options.externalIp !== '') headers['x-external-ip'] = this.options.externalIp;
    if (this.options.externalPort !== '') headers['x-custom-port'] = this.options.externalPort;
    if (this.options.externalSsl) headers['x-ssl-use'] = 'true';
    if (this.currentState !== 'connecting') return; // closed while signing

    this.options.logger.info(`[CONTROL] Connecting to ${this.url}`);
    const socket = new WebSocket(this.url, {
      headers,
      rejectUnauthorized: !this.options.insecureTls,
      handshakeTimeout: Math.max(1000, this.options.requestTimeoutMs),
      maxPayload: 1024 * 1024,
    });
    this.socket = socket;
    socket.on('open', () => this.onOpen(socket));
    socket.on('message', (data, isBinary) => {
      if (!isBinary) this.onMessage(data.toString());
    });
    socket.on('error', (error) => this.options.logger.error(`[CONTROL] ${error.message}`));
    socket.on('close', () => this.onClose(socket));
  }

  private token(): Promise<string> {
    return new SignJWT({ sub: 'wss-control' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(this.options.secret));
  }

  private onOpen(socket: WebSocket): void {
    if (socket !== this.socket) return;
    this.currentState = 'connected';
    this.backoff.reset();
    this.lastReceived = Date.now();
    this.startHeartbeat(socket);
    // The coordinator treats a new connection as a restarted server: its streams are gone.
    const killed = this.controller?.killAllPublishers() ?? 0;
    this.options.logger.info(`[CONTROL] Connected${killed > 0 ? `; closed ${killed} publisher(s) the coordinator no longer knows` : ''}`);
    this.emit('connected');
  }

  private onClose(socket: WebSocket): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.stopHeartbeat();
    this.denyAllPending();
    const wasConnected = this.currentState === 'connected';
    if (this.currentState === 'closed') return;
    this.currentState = 'connecting';
    const delay = this.backoff.next();
    this.options.logger.warn(`[CONTROL] ${wasConnected ? 'Disconnected' : 'Connection failed'}; retrying in ${(delay / 1000).toFixed(1)} s`);
    if (wasConnected) this.emit('disconnected');
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  private onMessage(raw: string): void {
    this.lastReceived = Date.now();
    const message = ControlMessage.parse(raw);
    this.emit('message', message);
    switch (message.type) {
      case 'HEARTBEAT':
        return;
      case 'ERROR':
        this.options.logger.error(`[CONTROL] Coordinator error ${message.get('Error-Code') ?? '?'}: ${message.get('Error-Message') ?? ''}`);
        return;
      case 'PUBLISH-ACCEPT':
      case 'PUBLISH-DENY':
        return this.onPublishAnswer(message);
      case 'STREAM-KILL':
        return this.onStreamKill(message);
      default:
        this.options.logger.warn(`[CONTROL] Ignoring unknown message type '${message.type.slice(0, 40)}'`);
    }
  }

  private onPublishAnswer(message: ControlMessage): void {
    const requestId = message.get('Request-ID') ?? '';
    const request = this.pending.get(requestId);
    if (request === undefined) {
      this.options.logger.warn(`[CONTROL] ${message.type} for unknown request '${requestId.slice(0, 40)}'`);
      return;
    }
    this.pending.delete(requestId);
    clearTimeout(request.timer);
    const streamId = message.get('Stream-ID') ?? '';
    if (message.type === 'PUBLISH-ACCEPT' && streamId !== '') request.finish({ accepted: true, streamId }, 'accepted');
    else request.finish(DENY, 'denied');
  }

  private onStreamKill(message: ControlMessage): void {
    const channel = message.get('Stream-Channel');
    const streamId = message.get('Stream-ID');
    if (channel === undefined || streamId === undefined || streamId === '') {
      this.options.logger.warn('[CONTROL] STREAM-KILL without Stream-Channel or Stream-ID ignored');
      return;
    }
    const killed = this.controller?.killPublisher(channel, streamId) ?? false;
    this.options.logger.info(`[CONTROL] STREAM-KILL '${channel}' (${streamId}): ${killed ? 'publisher closed' : 'no matching publisher'}`);
  }

  private send(message: ControlMessage): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(message.serialize());
  }

  private startHeartbeat(socket: WebSocket): void {
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastReceived > this.options.deadAfterMs) {
        this.options.logger.warn('[CONTROL] Coordinator silent for too long: reconnecting');
        socket.terminate();
        return;
      }
      this.send(new ControlMessage('HEARTBEAT'));
    }, this.options.heartbeatMs);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private denyAllPending(): void {
    for (const request of this.pending.values()) {
      clearTimeout(request.timer);
      request.finish(DENY, 'disconnected');
    }
    this.pending.clear();
  }
}
