import type uWS from 'uWebSockets.js';
import { hlsRoot, registerHlsRoutes } from './bridge/hls.js';
import type { ServerState } from './cluster/state.js';
import type { Config } from './config/index.js';
import { send } from './server/http-response.js';

/** An entry of the public list (`/streams`): never keys or IPs. */
export interface PublicStream {
  readonly channel: string;
  readonly startedAt: string;
  readonly receivers: number;
}

/** The public list of a server's state: live channels and their viewers on every thread. */
export function publicStreamsOf(state: ServerState): PublicStream[] {
  return [...state.channels.values()].flatMap((channel) =>
    channel.publisher === null ? [] : [{ channel: channel.name, startedAt: new Date(channel.publisher.startedAt).toISOString(), receivers: channel.receivers.length }],
  );
}

/**
 * The HTTP routes every listener carries besides the stream routes and the test page: the
 * public stream list (PUBLIC_STREAM_LIST) and the HLS files (BRIDGE_HLS). The same on one
 * thread and on every worker thread; `streams` may have to ask the other threads.
 */
export function publicRoutes(config: Config, streams: () => readonly PublicStream[] | Promise<readonly PublicStream[]>): (app: uWS.TemplatedApp) => void {
  return (app) => {
    if (config.publicStreamList) {
      app.get('/streams', (res) => {
        let aborted = false;
        res.onAborted(() => (aborted = true));
        const answer = (list: readonly PublicStream[], status = 200): void => {
          if (aborted) return;
          res.cork(() => send(res, { status, body: status === 200 ? { streams: list } : { error: 'Stream list unavailable' }, headers: { 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' } }));
        };
        Promise.resolve()
          .then(streams)
          .then((list) => answer(list), () => answer([], 503));
      });
    }
    if (config.bridgeHls) registerHlsRoutes(app, hlsRoot(config.hlsDir), config.idMaxLength);
  };
}
