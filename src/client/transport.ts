// The seam between the SDK and a WebSocket implementation: the native WebSocket in browsers
// (or any WHATWG-compatible one), the `ws` package in Node, which also reports the HTTP
// status and body of a refused upgrade and can stop reading from the network.

/** How a transport ended; reported once, last. */
export interface TransportClose {
  readonly code: number;
  readonly reason: string;
  /** The handshake had completed. */
  readonly opened: boolean;
  /** The server refused the upgrade with this HTTP answer (Node only). */
  readonly rejection?: { readonly status: number; readonly body: string };
  readonly error?: Error;
}

export interface TransportHandlers {
  open(): void;
  message(data: Uint8Array | string): void;
  close(info: TransportClose): void;
}

export interface Transport {
  /** Bytes accepted by send() and not yet handed to the network. */
  readonly bufferedAmount: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  /** Calls `callback` once, when bufferedAmount is at or below `level`. */
  whenBelow(level: number, callback: () => void): void;
  /** Stops reading from the network (TCP backpressure to the server); false in browsers. */
  readonly canPause: boolean;
  pause(): void;
  resume(): void;
}

/** The part of the WHATWG WebSocket the SDK uses. */
export interface WhatwgWebSocket {
  binaryType: string;
  readonly bufferedAmount: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WhatwgWebSocket;

export interface TransportOptions {
  /**
   * A WHATWG WebSocket constructor to use. Default: the `ws` package in Node (for HTTP
   * refusal details and real backpressure), `globalThis.WebSocket` everywhere else.
   */
  readonly WebSocket?: WebSocketConstructor;
  /** Largest message accepted (`ws` only). Default 512 MiB, the server's maximum. */
  readonly maxMessageBytes?: number;
}

/** How often a browser transport checks bufferedAmount while someone waits for it to fall. */
const POLL_MS = 10;
const MAX_REFUSAL_BODY = 4096;

export async function openTransport(url: string, handlers: TransportHandlers, options: TransportOptions = {}): Promise<Transport> {
  if (options.WebSocket !== undefined) return whatwgTransport(options.WebSocket, url, handlers);
  const runtime = globalThis as { process?: { versions?: { node?: string } }; WebSocket?: WebSocketConstructor };
  if (runtime.process?.versions?.node === undefined && runtime.WebSocket !== undefined) return whatwgTransport(runtime.WebSocket, url, handlers);
  return wsTransport(url, handlers, options);
}

function whatwgTransport(WebSocketClass: WebSocketConstructor, url: string, handlers: TransportHandlers): Transport {
  const socket = new WebSocketClass(url);
  socket.binaryType = 'arraybuffer';
  let opened = false;
  let waiters: Array<{ level: number; callback: () => void }> = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const poll = (): void => {
    timer = undefined;
    const ready = waiters.filter((waiter) => socket.bufferedAmount <= waiter.level);
    waiters = waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.callback();
    if (waiters.length > 0) timer = setTimeout(poll, POLL_MS);
  };
  socket.onopen = () => {
    opened = true;
    handlers.open();
  };
  socket.onmessage = (event) => {
    const { data } = event;
    handlers.message(typeof data === 'string' ? data : new Uint8Array(data as ArrayBuffer));
  };
  // Browsers hide why a handshake failed (HTTP status included): the close event says 1006.
  socket.onerror = () => {};
  socket.onclose = (event) => {
    if (timer !== undefined) clearTimeout(timer);
    waiters = [];
    handlers.close({ code: event.code, reason: event.reason, opened });
  };
  return {
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    send: (data) => socket.send(data),
    close: (code, reason) => socket.close(code, reason),
    whenBelow(level, callback) {
      waiters.push({ level, callback });
      if (timer === undefined) timer = setTimeout(poll, 0);
    },
    canPause: false,
    pause() {},
    resume() {},
  };
}

async function wsTransport(url: string, handlers: TransportHandlers, options: TransportOptions): Promise<Transport> {
  // A computed specifier, so that bundlers for the browser do not try to include `ws`.
  const specifier = 'ws';
  const { default: WebSocket } = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as typeof import('ws');
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: options.maxMessageBytes ?? 512 * 1024 * 1024 });
  let opened = false;
  let rejection: TransportClose['rejection'];
  let error: Error | undefined;
  let waiters: Array<{ level: number; callback: () => void }> = [];
  const check = (): void => {
    const ready = waiters.filter((waiter) => socket.bufferedAmount <= waiter.level);
    waiters = waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.callback();
  };
  socket.on('open', () => {
    opened = true;
    handlers.open();
  });
  socket.on('message', (data: Buffer, isBinary: boolean) => handlers.message(isBinary ? data : data.toString('utf8')));
  socket.on('unexpected-response', (_request, response) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (part: string) => {
      if (body.length < MAX_REFUSAL_BODY) body += part;
    });
    response.on('end', () => {
      rejection = { status: response.statusCode ?? 0, body: body.slice(0, MAX_REFUSAL_BODY) };
      socket.terminate();
    });
    response.on('error', () => socket.terminate());
  });
  socket.on('error', (cause) => (error ??= cause));
  socket.on('close', (code: number, reason: Buffer) => {
    waiters = [];
    handlers.close({ code, reason: reason.toString(), opened, ...(rejection && { rejection }), ...(error && { error }) });
  });
  return {
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    // The callback runs once the message is handed to the kernel: the moment bufferedAmount falls.
    send: (data) => socket.send(data, check),
    close: (code, reason) => socket.close(code, reason),
    whenBelow(level, callback) {
      waiters.push({ level, callback });
      queueMicrotask(check);
    },
    canPause: true,
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}
