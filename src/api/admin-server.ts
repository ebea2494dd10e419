import uWS from 'uWebSockets.js';
import { keysMatch } from '../channels/channel.js';
import type { ListenAddress } from '../config/parsers.js';
import { ffmpegVersion, findFfmpeg } from '../bridge/ffmpeg.js';
import { ControlClient } from '../coordinator/index.js';
import type { Logger } from '../log/logger.js';
import { BodyTooLarge, readBody } from './http.js';
import { send } from '../server/http-response.js';
import { closeApp, describeAddress, listen } from '../server/listen.js';
import type { HttpAnswer } from '../server/http-response.js';
import { ServerMetrics } from './metrics.js';
import { RateTracker, publisherKey } from './rates.js';
import { channelDetail, channelSummary, serverSummary } from './snapshot.js';
import type { FfmpegInfo, ViewContext } from './snapshot.js';
import type { ServerSource } from './source.js';

interface Request {
  params: string[];
  query: URLSearchParams;
  body: Buffer;
}

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handle: (request: Request) => HttpAnswer | Promise<HttpAnswer>;
}

const BODY_LIMIT = 16 * 1024;
/** Admin answers describe the present moment: never cached. */
const NO_STORE = { 'Cache-Control': 'no-store' };
const notFound = (what = 'Not found'): HttpAnswer => ({ status: 404, body: { error: what } });

/**
 * The admin listener (ADMIN_ADDRESS): stats API, kill, health checks and Prometheus metrics.
 * It reads the server through a ServerSource (one stream server, or every worker thread's
 * figures summed) and never sits on the streaming path.
 */
export class AdminServer {
  private readonly app = uWS.App();
  private readonly routes: Route[];
  private readonly rates = new RateTracker();
  private readonly metrics: ServerMetrics;
  private readonly views: ViewContext;
  private listenSocket: uWS.us_listen_socket | undefined;
  private sampler: NodeJS.Timeout | undefined;
  /** A sampling round is under way (with worker threads, it waits for their answers). */
  private sampling = false;
  private ffmpeg: Promise<FfmpegInfo | null> | undefined;
  private listeningPort = 0;

  constructor(
    private readonly source: ServerSource,
    private readonly address: ListenAddress,
    private readonly token: string,
    private readonly logger: Logger,
  ) {
    this.metrics = new ServerMetrics(source);
    this.views = { rates: this.rates, bridgeChannels: source.bridgeChannels, workers: source.workers };
    this.routes = [
      { method: 'GET', pattern: /^\/healthz$/, handle: () => ({ status: 200, body: { status: 'ok' } }) },
      { method: 'GET', pattern: /^\/readyz$/, handle: () => this.readiness() },
      { method: 'GET', pattern: /^\/metrics$/, handle: async () => ({ status: 200, body: await this.metrics.text(), contentType: this.metrics.contentType }) },
      { method: 'GET', pattern: /^\/api\/v1\/server$/, handle: () => this.serverInfo() },
      { method: 'GET', pattern: /^\/api\/v1\/channels$/, handle: () => this.channels() },
      { method: 'GET', pattern: /^\/api\/v1\/channels\/([^/]+)$/, handle: ({ params }) => this.channel(params[0]!) },
      { method: 'POST', pattern: /^\/api\/v1\/channels\/([^/]+)\/kill$/, handle: (request) => this.kill(request) },
    ];
    this.app.any('/*', (res, req) => this.onRequest(res, req));
  }

  get port(): number {
    return this.listeningPort;
  }

  listen(): void {
    const socket = listen(this.app, this.address.host, this.address.port, { exclusive: true });
    if (socket === false) throw new Error(`Cannot listen on ${describeAddress(this.address.host, this.address.port)} (ADMIN_ADDRESS): address in use or not available`);
    this.listenSocket = socket;
    this.listeningPort = uWS.us_socket_local_port(socket);
    this.sampler = setInterval(() => this.sampleRates(), 1000);
    this.sampler.unref();
    this.logger.info(`[ADMIN] Listening on ${this.address.host}:${this.listeningPort}${this.token === '' ? '' : ' (token required)'}`);
  }

  close(): void {
    clearInterval(this.sampler);
    if (this.listenSocket !== undefined) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
    closeApp(this.app);
  }

  /** Samples every publisher's byte count; bitrates are computed from these when asked. */
  private sampleRates(): void {
    if (this.sampling) return;
    this.sampling = true;
    this.source
      .publisherBytes()
      .then((publishers) => {
        const time = Date.now();
        const live = new Set<string>();
        for (const { channel, streamId, bytesIn } of publishers) {
          const key = publisherKey(channel, streamId);
          live.add(key);
          this.rates.sample(key, bytesIn, time);
        }
        this.rates.retain(live);
      })
      .catch((error: unknown) => this.logger.error(`[ADMIN] Sampling the bitrates: ${String(error)}`))
      .finally(() => (this.sampling = false));
  }

  private onRequest(res: uWS.HttpResponse, req: uWS.HttpRequest): void {
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const query = new URLSearchParams(req.getQuery() ?? '');
    const authorization = req.getHeader('authorization');
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const answer = (reply: HttpAnswer, headOnly = false): void => {
      if (!aborted) send(res, { ...reply, headers: { ...NO_STORE, ...reply.headers } }, headOnly);
    };

    if (this.token !== '' && !keysMatch(authorization, `Bearer ${this.token}`)) {
      return answer({ status: 401, body: { error: 'Unauthorized: send Authorization: Bearer <ADMIN_TOKEN>' }, headers: { 'WWW-Authenticate': 'Bearer' } });
    }
    const matching = this.routes.flatMap((route) => {
      const match = route.pattern.exec(path);
      return match === null ? [] : [{ route, params: match.slice(1).map((part) => decodeURIComponent(part)) }];
    });
    if (matching.length === 0) return answer(notFound());
    const allow = [...new Set(matching.flatMap(({ route }) => (route.method === 'GET' ? ['GET', 'HEAD'] : [route.method]))), 'OPTIONS'].join(', ');
    if (method === 'OPTIONS') return answer({ status: 204, headers: { Allow: allow } });
    const wanted = method === 'HEAD' ? 'GET' : method;
    const found = matching.find(({ route }) => route.method === wanted);
    if (found === undefined) return answer({ status: 405, body: { error: `Method ${method} not allowed` }, headers: { Allow: allow } });

    const run = async (): Promise<HttpAnswer> => {
      const body = found.route.method === 'POST' ? await readBody(res, BODY_LIMIT) : Buffer.alloc(0);
      return found.route.handle({ params: found.params, query, body });
    };
    run().then(
      (reply) => answer(reply, method === 'HEAD'),
      (error: unknown) => {
        if (error instanceof BodyTooLarge) return answer({ status: 413, body: { error: error.message } });
        this.logger.error(`[ADMIN] ${method} ${path}: ${String(error)}`);
        answer({ status: 500, body: { error: 'Internal error' } });
      },
    );
  }

  private async serverInfo(): Promise<HttpAnswer> {
    const [state, ffmpeg] = await Promise.all([this.source.state(), this.ffmpegInfo()]);
    return { status: 200, body: serverSummary(this.source, state, ffmpeg) };
  }

  private async channels(): Promise<HttpAnswer> {
    const { channels } = await this.source.state();
    return { status: 200, body: { channels: [...channels.values()].map((channel) => channelSummary(channel, this.views)) } };
  }

  private async channel(name: string): Promise<HttpAnswer> {
    const channel = (await this.source.state()).channels.get(name);
    return channel === undefined ? notFound(`No channel '${name}'`) : { status: 200, body: channelDetail(channel, this.views) };
  }

  /** Closes the channel's publisher; with a `streamId` (JSON body or query) only if it matches. */
  private kill({ params, query, body }: Request): HttpAnswer {
    const name = params[0]!;
    let streamId = query.get('streamId') ?? undefined;
    if (body.length > 0) {
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { streamId?: unknown };
        if (parsed.streamId !== undefined) streamId = String(parsed.streamId);
      } catch {
        return { status: 400, body: { error: 'Body must be JSON like {"streamId": "…"} or empty' } };
      }
    }
    const publisher = this.source.publisher(name);
    if (publisher === undefined) return notFound(`Nothing is published on '${name}'`);
    if (streamId !== undefined && streamId !== publisher.streamId) {
      // The admin API is trusted (token or loopback): naming the live stream id helps the caller retry.
      const error = `stream id mismatch: '${name}' is live with stream id '${publisher.streamId}', not '${streamId}'`;
      return { status: 409, body: { killed: false, channel: name, streamId: publisher.streamId, error } };
    }
    if (!this.source.kill(name, publisher.streamId)) return notFound(`Nothing is published on '${name}'`);
    const thread = this.source.workers > 1 ? `, thread ${publisher.thread}` : '';
    this.logger.info(`[ADMIN] Killed the publisher of '${name}' (${publisher.streamId}${thread})`);
    return { status: 200, body: { killed: true, channel: name, streamId: publisher.streamId } };
  }

  private readiness(): HttpAnswer {
    const reasons: string[] = [];
    if (!this.source.listening) reasons.push('listeners are not up');
    const { authorizer } = this.source;
    if (authorizer instanceof ControlClient && authorizer.state !== 'connected') reasons.push(`coordinator ${authorizer.state}`);
    return reasons.length === 0 ? { status: 200, body: { ready: true } } : { status: 503, body: { ready: false, reasons } };
  }

  private ffmpegInfo(): Promise<FfmpegInfo | null> {
    this.ffmpeg ??= (async () => {
      // The same lookup as the bridge: FFMPEG_PATH from any config source, then PATH, then npm.
      const found = findFfmpeg({ ...process.env, FFMPEG_PATH: this.source.config.ffmpegPath });
      if (found === undefined) return null;
      return { path: found.path, source: found.source, version: await ffmpegVersion(found.path) };
    })();
    return this.ffmpeg;
  }
}
