export { WorkerCluster } from './cluster.js';
export type { WorkerClusterEvents, WorkerClusterOptions } from './cluster.js';
export { mergeStates, threadState } from './state.js';
export type { ServerChannel, ServerState, ThreadChannel, ThreadState } from './state.js';
