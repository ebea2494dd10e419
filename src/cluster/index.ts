export { WorkerCluster } from './cluster.js';
export type { WorkerClusterEvents } from './cluster.js';
export type { ThreadState, ThreadChannel } from './state.js';
