import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import type uWS from 'uWebSockets.js';
import type { Config } from '../config/index.js';
import { packageRoot, publicDir } from '../paths.js';
import { Rejections } from '../protocol/errors.js';
import { send, sendRejection } from './http-response.js';
import { VERSION } from '../version.js';

/** Plain HTTP: the test page at `/`, and precise answers for everything else. */
export class StaticRoutes {
  private readonly testPage: Buffer | undefined;
  /** The test page's assets, served at `/_/<name>` (see testPageAssets). */
  private readonly assets: Map<string, string>;
  private readonly assetCache = new Map<string, Buffer>();

  constructor(config: Config) {
    this.testPage = config.disableTestClient ? undefined : readFileSync(join(publicDir, 'index.html'));
    this.assets = config.disableTestClient ? new Map() : testPageAssets();
  }

  /** `isStreamPath` tells stream-shaped paths, which need a WebSocket upgrade (426), from unknown ones (404). */
  register(app: uWS.TemplatedApp, isStreamPath: (path: string) => boolean): void {
    const home = (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
      const headOnly = req.getMethod() === 'head';
      if (this.testPage === undefined) {
        return send(res, { status: 200, body: `Websocket streaming server - Version ${VERSION}` }, headOnly);
      }
      send(res, { status: 200, body: this.testPage, contentType: 'text/html; charset=utf-8', headers: { 'Cache-Control': 'no-cache' } }, headOnly);
    };
    for (const path of ['/', '/index.html']) {
      app.get(path, home);
      app.head(path, home);
    }
    // Two path segments: never the shape of a stream route (three).
    const asset = (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
      const name = req.getParameter(0) ?? '';
      const body = this.asset(name);
      if (body === undefined) return sendRejection(res, Rejections.NOT_FOUND);
      const headers = { 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' };
      send(res, { status: 200, body, contentType: ASSET_TYPES[extname(name)] ?? 'application/octet-stream', headers }, req.getMethod() === 'head');
    };
    app.get('/_/:file', asset);
    app.head('/_/:file', asset);
    app.any('/*', (res, req) => {
      const method = req.getMethod();
      const path = req.getUrl();
      if (!isStreamPath(path)) return sendRejection(res, Rejections.NOT_FOUND);
      sendRejection(res, method === 'get' ? Rejections.UPGRADE_REQUIRED : Rejections.METHOD_NOT_ALLOWED);
    });
  }

  /** An asset's bytes, read once on first request; undefined for unknown names. */
  private asset(name: string): Buffer | undefined {
    const cached = this.assetCache.get(name);
    if (cached !== undefined) return cached;
    const file = this.assets.get(name);
    if (file === undefined || !existsSync(file)) return undefined;
    const body = readFileSync(file);
    this.assetCache.set(name, body);
    return body;
  }
}

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * The test page's files by name: public/ (styles, images), dist/web/ (the page bundled by esbuild
 * from web/) and hls.js's ES module (`hls.min.mjs`, from the hls.js dependency).
 * Only these names are served: nothing is looked up from the request path.
 */
function testPageAssets(): Map<string, string> {
  const assets = new Map<string, string>();
  for (const dir of [publicDir, join(packageRoot, 'dist', 'web')]) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (name !== 'index.html' && extname(name) in ASSET_TYPES) assets.set(name, join(dir, name));
    }
  }
  try {
    const hls = join(dirname(createRequire(import.meta.url).resolve('hls.js/package.json')), 'dist');
    assets.set('hls.min.mjs', join(hls, 'hls.min.mjs'));
    assets.set('hls.min.mjs.map', join(hls, 'hls.min.mjs.map'));
  } catch {
    // hls.js not installed: the HLS panel reports it cannot load
  }
  return assets;
}
