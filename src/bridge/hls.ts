import { createHash, randomBytes } from 'node:crypto';
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { tmpdir } from 'node:os';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type uWS from 'uWebSockets.js';
import { Rejections } from '../protocol/errors.js';
import { isValidId } from '../protocol/route.js';
import { send } from '../server/http-response.js';
import type { HttpAnswer } from '../server/http-response.js';
import type { OutputTarget } from './args.js';
import type { BridgeOutput } from './bridge.js';

/** HLS_DIR, or its default in the system temp folder; always absolute. */
export function hlsRoot(hlsDir: string): string {
  return resolve(hlsDir === '' ? join(tmpdir(), 'ws-stream-server-hls') : hlsDir);
}

export interface HlsSettings {
  readonly segmentSeconds: number;
  readonly listSize: number;
}

const PLAYLIST = 'index.m3u8';
const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const SEGMENT_TYPE = 'video/mp2t';
const EMPTY = Buffer.alloc(0);

/**
 * The HLS output of one publishing session: ffmpeg writes `<root>/<channel>/index.m3u8` and
 * segments named `<session>-<start>-<n>.ts`. Caches keep segments for a year, so a name must
 * never stand for other bytes: `session` (the publishing time) gets random bits, as a server
 * restarted with a clock set back, or another server publishing the channel behind the same
 * CDN, could repeat it; `start` counts this session's ffmpeg starts, so a restarted ffmpeg
 * never rewrites a name its predecessor used. `serial` runs a task after the channel's earlier
 * folder work (the cleanup of a previous session), so sessions never trample each other's files.
 */
export class HlsOutput implements BridgeOutput {
  readonly kind = 'hls';
  readonly description: string;
  readonly folder: string;
  private readonly session: string;
  private readonly playlist: string;
  private starts = 0;
  private current: OutputTarget;

  constructor(
    root: string,
    channel: string,
    session: string,
    private readonly settings: HlsSettings,
    private readonly serial: (task: () => Promise<void>) => Promise<void>,
  ) {
    this.folder = join(root, channel);
    this.playlist = join(this.folder, PLAYLIST);
    this.description = `/hls/${channel}/index.m3u8`;
    this.session = `${session}${randomBytes(3).toString('hex')}`;
    this.current = this.targetFor(0, false);
  }

  /** Where the next ffmpeg writes (set by `prepare()`). */
  get target(): OutputTarget {
    return this.current;
  }

  /**
   * The session's first ffmpeg starts on an empty folder. A restarted one continues the
   * playlist its predecessor left (ffmpeg marks the seam with `#EXT-X-DISCONTINUITY`); the
   * files that playlist does not list (a segment cut short, ones already dropped from it) are
   * removed first, as no ffmpeg would delete them.
   */
  async prepare(first: boolean): Promise<void> {
    const start = this.starts++;
    let append = false;
    if (first) {
      await this.serial(async () => {
        await rm(this.folder, { recursive: true, force: true });
        await mkdir(this.folder, { recursive: true });
      });
    } else {
      await mkdir(this.folder, { recursive: true });
      const playlist = await readPlaylist(this.playlist);
      append = playlist !== undefined;
      const unlisted = (await readdir(this.folder)).filter((name) => name !== PLAYLIST && playlist?.segments.has(name) !== true);
      await Promise.all(unlisted.map((name) => rm(join(this.folder, name), { force: true })));
    }
    this.current = this.targetFor(start, append);
  }

  private targetFor(start: number, append: boolean): OutputTarget {
    return {
      kind: 'hls',
      playlist: this.playlist,
      segments: join(this.folder, `${this.session}-${start}-%d.ts`),
      segmentSeconds: this.settings.segmentSeconds,
      listSize: this.settings.listSize,
      append,
    };
  }
}

/** Segment names as the bridge writes them: no dots but the extension, no slashes, no escapes. */
const SEGMENT = /^[A-Za-z0-9_-]{1,128}\.ts$/;
/** `<session>-<start>-<n>.ts`: the order ffmpeg writes them in. */
const SEGMENT_ORDER = /^([A-Za-z0-9_]+)-(\d+)-(\d+)\.ts$/;
/** Files up to this size are read whole; larger ones are streamed with backpressure. */
const SMALL_FILE = 1024 * 1024;
const STREAM_CHUNK = 256 * 1024;
/** A segment's name is never reused (see HlsOutput): caches may keep it for good. */
const SEGMENT_CACHE = 'public, max-age=31536000, immutable';
/** Every HLS answer may be read by a player on another origin, with the headers caches add. */
const CORS = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Age, Content-Length, Date, ETag' };
/** A missing file may appear a moment later (a playlist at a stream's start): never cached. */
const NOT_FOUND_HEADERS = { ...CORS, 'Cache-Control': 'no-store' };
/** A header list we echo in a preflight answer: tokens and commas only. */
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~, -]{0,1000}$/;

/**
 * Every HLS answer is published here (`{ method, path, status }`), for tests and instrumentation
 * (an APM, an access log) that subscribe; nothing is built when nobody does.
 */
export const HLS_ANSWERS = 'ws-stream-server:hls';
export const hlsAnswers = diagnosticsChannel(HLS_ANSWERS);

/** What an HLS answer reports on `hlsAnswers`. */
export interface HlsAnswer {
  readonly method: 'GET' | 'HEAD';
  readonly path: string;
  readonly status: number;
}

/** What a request asks, read before any await (uWebSockets.js forbids touching `req` later). */
interface FileRequest {
  readonly head: boolean;
  readonly path: string;
  readonly ifNoneMatch: string;
  readonly ifModifiedSince: string;
}

/**
 * `GET`/`HEAD /hls/<channel>/index.m3u8` and `/hls/<channel>/<segment>.ts` from `root`, made for
 * HTTP caches and CDNs (docs/bridge.md, docs/scaling.md): segments immutable for a year,
 * playlists for half their target duration, `ETag` (and `Last-Modified` for segments) with
 * `304` answers, CORS with preflight, 404 never cached. Only names of that shape are looked up,
 * so `..`, `%2e%2e`, encoded slashes and the like are 404. A WebSocket upgrade on these paths is
 * left to the stream route (which refuses it).
 */
export function registerHlsRoutes(app: uWS.TemplatedApp, root: string, idMaxLength: number): void {
  const file = (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
    if (req.getHeader('upgrade') !== '') {
      req.setYield(true);
      return;
    }
    const request: FileRequest = {
      head: req.getMethod() === 'head',
      path: req.getUrl(),
      ifNoneMatch: req.getHeader('if-none-match'),
      ifModifiedSince: req.getHeader('if-modified-since'),
    };
    const channel = req.getParameter(0) ?? '';
    const name = req.getParameter(1) ?? '';
    if (!isValidId(channel, idMaxLength) || (name !== PLAYLIST && !SEGMENT.test(name))) {
      notFound(res, request);
      return;
    }
    serve(res, request, join(root, channel), name);
  };
  // Any other shape under /hls/ is not a file we have (rather than a stream path needing an upgrade).
  const other = (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
    if (req.getHeader('upgrade') !== '') {
      req.setYield(true);
      return;
    }
    notFound(res, { head: req.getMethod() === 'head', path: req.getUrl(), ifNoneMatch: '', ifModifiedSince: '' });
  };
  app.get('/hls/:channel/:file', file);
  app.head('/hls/:channel/:file', file);
  app.get('/hls/*', other);
  app.head('/hls/*', other);
  // CORS preflight, for players that send their own headers (hls.js `xhrSetup`, Range).
  app.options('/hls/*', (res, req) => {
    const asked = req.getHeader('access-control-request-headers');
    const headers: Record<string, string> = {
      ...CORS,
      'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
      'Access-Control-Max-Age': '86400',
      Vary: 'Access-Control-Request-Headers',
    };
    if (asked !== '' && HEADER_LIST.test(asked)) headers['Access-Control-Allow-Headers'] = asked;
    send(res, { status: 204, headers }, true);
  });
}

function notFound(res: uWS.HttpResponse, request: FileRequest): void {
  const { status, reason, body } = Rejections.NOT_FOUND;
  send(res, { status, reason, body, headers: NOT_FOUND_HEADERS }, request.head);
  published(request, status);
}

function published(request: FileRequest, status: number): void {
  if (hlsAnswers.hasSubscribers) hlsAnswers.publish({ method: request.head ? 'HEAD' : 'GET', path: request.path, status } satisfies HlsAnswer);
}

/** A playlist as ffmpeg finished writing it. */
interface Playlist {
  readonly body: Buffer;
  readonly segments: ReadonlySet<string>;
  /** The first segment listed, whose predecessors have left the playlist. */
  readonly first: string | undefined;
  readonly targetDuration: number;
}

/**
 * The playlist at `path`, or undefined when there is none. ffmpeg 5+ replaces it by rename, but
 * ffmpeg 4 rewrites it in place, so a read may catch it empty or cut: then it is read again a
 * moment later, and never served incomplete.
 */
async function readPlaylist(path: string): Promise<Playlist | undefined> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      return undefined;
    }
    const playlist = parsePlaylist(body);
    if (playlist !== undefined) return playlist;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return undefined;
}

/** The playlist, if complete: `#EXTM3U` first, and a segment or `#EXT-X-ENDLIST` last. */
function parsePlaylist(body: Buffer): Playlist | undefined {
  const text = body.toString('utf8');
  if (!text.startsWith('#EXTM3U') || !text.endsWith('\n')) return undefined;
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const last = lines.at(-1) ?? '';
  if (last.startsWith('#') && last.trim() !== '#EXT-X-ENDLIST') return undefined;
  const names = lines.filter((line) => !line.startsWith('#'));
  const target = /^#EXT-X-TARGETDURATION:(\d+)/m.exec(text);
  return { body, segments: new Set(names), first: names[0], targetDuration: target === null ? 0 : Number(target[1]) };
}

/**
 * True when a segment is complete and may be served (and cached for good): listed by the
 * playlist, or older than its first entry (dropped, still on disk for players a little
 * behind). A newer one may still be being written (ffmpeg 4 writes segments in place).
 */
function segmentReady(name: string, playlist: Playlist): boolean {
  if (playlist.segments.has(name)) return true;
  const segment = SEGMENT_ORDER.exec(name);
  const first = SEGMENT_ORDER.exec(playlist.first ?? '');
  if (segment === null || first === null || segment[1] !== first[1]) return false;
  const [start, n, firstStart, firstN] = [segment[2], segment[3], first[2], first[3]].map(Number) as [number, number, number, number];
  return start < firstStart || (start === firstStart && n < firstN);
}

/** True when the client's copy is current (RFC 9110: If-None-Match wins over If-Modified-Since). */
function notModified(request: FileRequest, etag: string, modifiedMs: number | undefined): boolean {
  if (request.ifNoneMatch !== '') {
    return request.ifNoneMatch.split(',').some((tag) => {
      const candidate = tag.trim().replace(/^W\//, '');
      return candidate === '*' || candidate === etag;
    });
  }
  if (request.ifModifiedSince === '' || modifiedMs === undefined) return false;
  const since = Date.parse(request.ifModifiedSince);
  return !Number.isNaN(since) && Math.floor(modifiedMs / 1000) * 1000 <= since;
}

/** Serves the playlist or a segment of the channel folder `folder`. */
function serve(res: uWS.HttpResponse, request: FileRequest, folder: string, name: string): void {
  const state = { aborted: false };
  res.onAborted(() => {
    state.aborted = true;
  });
  void (async () => {
    const playlist = await readPlaylist(join(folder, PLAYLIST));
    if (state.aborted) return;
    if (playlist === undefined || (name !== PLAYLIST && !segmentReady(name, playlist))) {
      notFound(res, request);
      return;
    }
    if (name === PLAYLIST) {
      const etag = `"${createHash('sha1').update(playlist.body).digest('base64url')}"`;
      // No Last-Modified: whole seconds cannot tell apart playlists rewritten within one.
      const headers = { ...CORS, 'Cache-Control': `public, max-age=${Math.floor(playlist.targetDuration / 2)}`, ETag: etag };
      answer(res, request, { headers, contentType: PLAYLIST_TYPE, body: notModified(request, etag, undefined) ? undefined : playlist.body });
      return;
    }
    await serveSegment(res, request, join(folder, name), state);
  })();
}

async function serveSegment(res: uWS.HttpResponse, request: FileRequest, path: string, state: { aborted: boolean }): Promise<void> {
  let handle: FileHandle | undefined;
  let started = false;
  try {
    handle = await open(path, 'r');
    const { size, mtimeMs, ino } = await handle.stat();
    if (state.aborted) return;
    const etag = `"${ino.toString(36)}-${size.toString(36)}-${Math.floor(mtimeMs).toString(36)}"`;
    const headers = { ...CORS, 'Cache-Control': SEGMENT_CACHE, ETag: etag, 'Last-Modified': new Date(mtimeMs).toUTCString() };
    if (notModified(request, etag, mtimeMs)) return answer(res, request, { headers });
    // HEAD: the length without reading the file.
    if (request.head) return answer(res, request, { headers, contentType: SEGMENT_TYPE, body: EMPTY, length: size });
    if (size <= SMALL_FILE) {
      const body = await handle.readFile();
      if (state.aborted) return;
      answer(res, request, { headers, contentType: SEGMENT_TYPE, body });
      return;
    }
    started = true;
    published(request, 200);
    await streamFile(res, handle, size, { ...headers, 'Content-Type': SEGMENT_TYPE }, state);
  } catch {
    // Missing (deleted meanwhile) or unreadable: 404 if nothing was sent yet.
    if (state.aborted) return;
    if (!started) notFound(res, request);
    else res.cork(() => res.close());
  } finally {
    await handle?.close();
  }
}

/** A whole answer: 200 with the body, or `304 Not Modified` when there is none. */
function answer(res: uWS.HttpResponse, request: FileRequest, reply: Omit<HttpAnswer, 'status'>): void {
  const status = reply.body === undefined ? 304 : 200;
  send(res, { status, ...reply }, request.head);
  published(request, status);
}

async function streamFile(res: uWS.HttpResponse, handle: FileHandle, size: number, headers: Record<string, string>, state: { aborted: boolean }): Promise<void> {
  let position = 0;
  let headersSent = false;
  while (position < size) {
    const buffer = Buffer.allocUnsafe(Math.min(STREAM_CHUNK, size - position));
    const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, position);
    if (state.aborted) return;
    if (bytesRead === 0) throw new Error('file shrank while being sent');
    const chunk = buffer.subarray(0, bytesRead);
    position += bytesRead;
    let sent: { ok: boolean; done: boolean; offset: number } = { ok: true, done: false, offset: 0 };
    res.cork(() => {
      if (!headersSent) {
        res.writeStatus('200 OK');
        for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
        headersSent = true;
      }
      const offset = res.getWriteOffset();
      const [ok, done] = res.tryEnd(chunk, size);
      sent = { ok, done, offset };
    });
    if (sent.done) return;
    if (!sent.ok) {
      // Backpressure: send the rest of this chunk when the socket drains, then read on.
      const from = sent.offset;
      await new Promise<void>((resolve) => {
        res.onWritable((offset) => {
          const [ok, done] = res.tryEnd(chunk.subarray(offset - from), size);
          if (ok || done) resolve();
          return ok;
        });
        res.onAborted(() => {
          state.aborted = true;
          resolve();
        });
      });
      if (state.aborted) return;
    }
  }
}
