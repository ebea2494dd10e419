export { EdgeRelays } from './edge-relays.js';
export type { EdgeHooks, UpstreamSource } from './edge-relays.js';
export { OriginRelay } from './origin-relay.js';
export type { RelayState, RelayView } from './origin-relay.js';
