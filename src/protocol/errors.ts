// Every way the protocol refuses or ends a client, defined once: the HTTP answer to a
// refused upgrade, or the ERROR text and close code for an open WebSocket.

/** WebSocket close codes the server uses (documented in PROTOCOL.md). */
export const CloseCode = {
  /** Publisher ended (sent to its receivers), probe delivered, client asked to close. */
  NORMAL: 1000,
  /** Server shutting down. */
  GOING_AWAY: 1001,
  /** Wrong key for the channel, or publisher killed by an operator. */
  POLICY_VIOLATION: 1008,
  /** Message larger than MAX_MESSAGE_SIZE_MB. */
  MESSAGE_TOO_BIG: 1009,
  /** Receiver fell further behind than MAX_RECEIVER_BUFFER_MB. */
  TRY_AGAIN_LATER: 1013,
  /** Nothing received for IDLE_TIMEOUT_SECONDS. */
  IDLE_TIMEOUT: 4000,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export interface UpgradeRejection {
  readonly code: string;
  readonly status: number;
  /** Status line reason phrase. */
  readonly reason: string;
  /** Plain-text body, byte-compatible with the Go server. */
  readonly body: string;
}

function rejection(code: string, status: number, reason: string, body: string): UpgradeRejection {
  return { code, status, reason, body };
}

/** Answers to HTTP requests (upgrades or not) that do not become a stream session. */
export const Rejections = {
  INVALID_CHANNEL: rejection('INVALID_CHANNEL', 404, 'Not Found', 'Invalid channel.'),
  INVALID_KEY: rejection('INVALID_KEY', 404, 'Not Found', 'Invalid key.'),
  INVALID_KIND: rejection('INVALID_KIND', 404, 'Not Found', 'Invalid connection kind.'),
  ALREADY_PUBLISHING: rejection('ALREADY_PUBLISHING', 403, 'Forbidden', 'Already publishing.'),
  PUBLISH_DENIED: rejection('PUBLISH_DENIED', 403, 'Forbidden', 'Invalid Key.'),
  NOT_WHITELISTED: rejection('NOT_WHITELISTED', 403, 'Forbidden', 'Cannot play: Not whitelisted.'),
  TOO_MANY_REQUESTS: rejection('TOO_MANY_REQUESTS', 429, 'Too Many Requests', 'Too many requests.'),
  NOT_FOUND: rejection('NOT_FOUND', 404, 'Not Found', 'Not found.'),
  /** RFC 6455: the Connection header of a handshake includes `Upgrade` (`close` would end the connection). */
  BAD_HANDSHAKE: rejection('BAD_HANDSHAKE', 400, 'Bad Request', 'Bad WebSocket handshake.'),
  UPGRADE_REQUIRED: rejection('UPGRADE_REQUIRED', 426, 'Upgrade Required', 'Upgrade Required: connect with a WebSocket.'),
  METHOD_NOT_ALLOWED: rejection('METHOD_NOT_ALLOWED', 405, 'Method Not Allowed', 'Method not allowed.'),
  SHUTTING_DOWN: rejection('SHUTTING_DOWN', 503, 'Service Unavailable', 'Server shutting down.'),
  /** An edge (ORIGIN_URL set) only relays the origin's channels. */
  PUBLISH_ON_EDGE: rejection('PUBLISH_ON_EDGE', 403, 'Forbidden', 'Cannot publish on an edge server.'),
} as const satisfies Record<string, UpgradeRejection>;

export interface SessionError {
  readonly code: string;
  /** TEXT message sent before closing; always starts with `ERROR:`. */
  readonly message: string;
  readonly closeCode: CloseCode;
  /** Close frame reason (at most 123 bytes). */
  readonly closeReason: string;
}

function sessionError(code: string, message: string, closeCode: CloseCode, closeReason: string): SessionError {
  return { code, message: `ERROR: ${message}`, closeCode, closeReason };
}

/** Errors that end an open WebSocket: an ERROR text, then a close frame. */
export const SessionErrors = {
  INVALID_STREAMING_KEY: sessionError('INVALID_STREAMING_KEY', 'Invalid streaming key', CloseCode.POLICY_VIOLATION, 'Invalid streaming key'),
  RECEIVER_TOO_SLOW: sessionError('RECEIVER_TOO_SLOW', 'Receiver too slow', CloseCode.TRY_AGAIN_LATER, 'Receiver too slow'),
  MESSAGE_TOO_BIG: sessionError('MESSAGE_TOO_BIG', 'Message too big', CloseCode.MESSAGE_TOO_BIG, 'Message too big'),
} as const satisfies Record<string, SessionError>;

/** Ends without an ERROR text: normal terminations. */
export const Closures = {
  PUBLISHER_ENDED: { closeCode: CloseCode.NORMAL, closeReason: 'Publisher ended' },
  PROBE_DONE: { closeCode: CloseCode.NORMAL, closeReason: 'Probe done' },
  SHUTDOWN: { closeCode: CloseCode.GOING_AWAY, closeReason: 'Server shutting down' },
  IDLE_TIMEOUT: { closeCode: CloseCode.IDLE_TIMEOUT, closeReason: 'Idle timeout' },
  KILLED: { closeCode: CloseCode.POLICY_VIOLATION, closeReason: 'Stream killed' },
} as const;
export type Closure = (typeof Closures)[keyof typeof Closures];
