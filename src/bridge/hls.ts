import { tmpdir } from 'node:os';
import { mkdir, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type uWS from 'uWebSockets.js';
import { Rejections } from '../protocol/errors.js';
import { isValidId } from '../protocol/route.js';
import { sendRejection } from '../server/http-response.js';
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

/**
 * The HLS output of one publishing session: ffmpeg writes `<root>/<channel>/index.m3u8` and
 * `<session>-<n>.ts` segments (the session prefix keeps players' caches honest when a channel
 * is published again). `serial` runs a task after the channel's earlier folder work (the
 * cleanup of a previous session), so sessions never trample each other's files.
 */
export class HlsOutput implements BridgeOutput {
  readonly kind = 'hls';
  readonly description: string;
  readonly target: OutputTarget;
  readonly folder: string;

  constructor(
    root: string,
    channel: string,
    session: string,
    settings: HlsSettings,
    private readonly serial: (task: () => Promise<void>) => Promise<void>,
  ) {
    this.folder = join(root, channel);
    this.description = `/hls/${channel}/index.m3u8`;
    this.target = {
      kind: 'hls',
      playlist: join(this.folder, 'index.m3u8'),
      segments: join(this.folder, `${session}-%d.ts`),
      segmentSeconds: settings.segmentSeconds,
      listSize: settings.listSize,
    };
  }

  /** The session's first ffmpeg starts on an empty folder; a restarted one continues the playlist. */
  prepare(first: boolean): Promise<void> {
    if (!first) return mkdir(this.folder, { recursive: true }).then(() => undefined);
    return this.serial(async () => {
      await rm(this.folder, { recursive: true, force: true });
      await mkdir(this.folder, { recursive: true });
    });
  }
}

const PLAYLIST = 'index.m3u8';
/** Segment names as the bridge writes them: no dots but the extension, no slashes, no escapes. */
const SEGMENT = /^[A-Za-z0-9_-]{1,128}\.ts$/;
/** Files up to this size are read whole; larger ones are streamed with backpressure. */
const SMALL_FILE = 1024 * 1024;
const STREAM_CHUNK = 256 * 1024;

/**
 * `GET /hls/<channel>/index.m3u8` and `GET /hls/<channel>/<segment>.ts`, from `root`. Only
 * names of that shape are looked up, so `..`, `%2e%2e`, encoded slashes and the like are 404.
 * A WebSocket upgrade on these paths is left to the stream route (which refuses it).
 */
export function registerHlsRoutes(app: uWS.TemplatedApp, root: string, idMaxLength: number): void {
  app.get('/hls/:channel/:file', (res, req) => {
    if (req.getHeader('upgrade') !== '') {
      req.setYield(true);
      return;
    }
    const channel = req.getParameter(0) ?? '';
    const file = req.getParameter(1) ?? '';
    if (!isValidId(channel, idMaxLength) || (file !== PLAYLIST && !SEGMENT.test(file))) {
      notFound(res);
      return;
    }
    const playlist = file === PLAYLIST;
    serveFile(res, join(root, channel, file), {
      'Content-Type': playlist ? 'application/vnd.apple.mpegurl' : 'video/mp2t',
      'Cache-Control': playlist ? 'no-cache' : 'max-age=60',
      'Access-Control-Allow-Origin': '*',
    });
  });
  // Any other shape under /hls/ is not a file we have (rather than a stream path needing an upgrade).
  app.get('/hls/*', (res, req) => {
    if (req.getHeader('upgrade') !== '') {
      req.setYield(true);
      return;
    }
    notFound(res);
  });
}

function notFound(res: uWS.HttpResponse): void {
  sendRejection(res, Rejections.NOT_FOUND, { 'Access-Control-Allow-Origin': '*' });
}

/** Serves a file: small ones read whole, large ones streamed as the client takes them. */
function serveFile(res: uWS.HttpResponse, path: string, headers: Record<string, string>): void {
  const state = { aborted: false };
  res.onAborted(() => {
    state.aborted = true;
  });
  void (async () => {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      const { size } = await handle.stat();
      if (state.aborted) return;
      if (size <= SMALL_FILE) {
        const body = await handle.readFile();
        if (state.aborted) return;
        res.cork(() => {
          res.writeStatus('200 OK');
          for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
          res.end(body);
        });
        return;
      }
      await streamFile(res, handle, size, headers, state);
    } catch {
      // Missing (unknown channel, segment already deleted) or unreadable: 404 if nothing was sent yet.
      if (!state.aborted && handle === undefined) notFound(res);
      else if (!state.aborted) res.cork(() => res.close());
    } finally {
      await handle?.close();
    }
  })();
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
