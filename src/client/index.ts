// The client SDK: publish and receive streams from Node (with the `ws` package) or a browser
// (native WebSocket). Import it as `ws-stream-server/client`; see docs/client.md.
export { StreamPublisher } from './publisher.js';
export type { PublisherEvents, PublisherOptions } from './publisher.js';
export { StreamReceiver, probe } from './receiver.js';
export type { ReceiverEvents, ReceiverOptions } from './receiver.js';
export { StreamClientError, ClientErrorCodes, errorFromClose, errorFromHttp, errorFromText } from './errors.js';
export type { ClientErrorCode, ErrorCategory } from './errors.js';
export { resolveStreamUrl, streamUrl } from './session.js';
export type { ConnectionOptions, ReconnectInfo, ReconnectOptions } from './session.js';
export type { Transport, TransportOptions, WebSocketConstructor, WhatwgWebSocket } from './transport.js';
