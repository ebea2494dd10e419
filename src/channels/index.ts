export { Channel, keysMatch } from './channel.js';
export type { ChannelOptions, LateJoin, LateJoinSource, Publisher } from './channel.js';
export { ChannelRegistry } from './registry.js';
export { Receiver } from './receiver.js';
export type { OverflowPolicy, ReceiverKind, ReceiverState } from './receiver.js';
export type { ClientSocket, SessionInfo } from './transport.js';
