import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type uWS from 'uWebSockets.js';
import type { Config } from '../config/index.js';
import { publicDir } from '../paths.js';
import { Rejections } from '../protocol/errors.js';
import type { UpgradeRejection } from '../protocol/errors.js';
import { VERSION } from '../version.js';

/** Plain HTTP: the test page at `/`, and precise answers for everything else. */
export class StaticRoutes {
  private readonly testPage: Buffer | undefined;

  constructor(config: Config) {
    this.testPage = config.disableTestClient ? undefined : readFileSync(join(publicDir, 'index.html'));
  }

  /** `isStreamPath` tells stream-shaped paths, which need a WebSocket upgrade (426), from unknown ones (404). */
  register(app: uWS.TemplatedApp, isStreamPath: (path: string) => boolean): void {
    const home = (res: uWS.HttpResponse): void => {
      res.cork(() => {
        if (this.testPage === undefined) {
          res.writeHeader('Content-Type', 'text/plain; charset=utf-8').end(`Websocket streaming server - Version ${VERSION}`);
        } else {
          res.writeHeader('Content-Type', 'text/html; charset=utf-8').writeHeader('Cache-Control', 'no-cache').end(this.testPage);
        }
      });
    };
    app.get('/', home);
    app.get('/index.html', home);
    app.any('/*', (res, req) => {
      const method = req.getMethod();
      const path = req.getUrl();
      if (!isStreamPath(path)) return answer(res, Rejections.NOT_FOUND);
      answer(res, method === 'get' ? Rejections.UPGRADE_REQUIRED : Rejections.METHOD_NOT_ALLOWED);
    });
  }
}

export function answer(res: uWS.HttpResponse, rejection: UpgradeRejection): void {
  res.cork(() => {
    res
      .writeStatus(`${rejection.status} ${rejection.reason}`)
      .writeHeader('Content-Type', 'text/plain; charset=utf-8')
      .end(rejection.body);
  });
}
