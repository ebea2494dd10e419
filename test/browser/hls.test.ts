// The HLS panel plays a playlist through hls.js served by the server itself (/_/hls.min.mjs).
// The server's HLS output is a later feature: here the test serves an ffmpeg-made playlist at
// the same URL through the server's extra-routes hook.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { requireFfmpeg } from '../../src/bridge/ffmpeg.js';
import { singleThreadOnly, startTestServer } from '../helpers/server.js';
import { chromiumMissing, ensurePageBuilt, launchBrowser, openPage, setStream, SKIP_REASON } from './helpers.js';

// The ffmpeg of the test pass (FFMPEG_PATH, else the PATH's, else the bundled one).
const ffmpeg = requireFfmpeg().path;

if (chromiumMissing) {
  t.plan(0, SKIP_REASON);
} else {
  ensurePageBuilt();

  t.test('the HLS panel plays /hls/<channel>/index.m3u8 with the locally served hls.js', { timeout: 55_000, skip: singleThreadOnly('the extra-routes hook is a function of this thread') }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-hls-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    await promisify(execFile)(ffmpeg, [
      '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440',
      '-t', '8', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac',
      '-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', join(dir, 'index.m3u8'),
    ]);
    const server = await startTestServer(t, {}, {
      routes: (app) => {
        app.get('/hls/:channel/:file', (res, req) => {
          const file = req.getParameter(1) ?? '';
          let body: Buffer;
          try {
            if (req.getParameter(0) !== 'show' || !/^index\d*\.(m3u8|ts)$/.test(file)) throw new Error('not here');
            body = readFileSync(join(dir, file));
          } catch {
            res.writeStatus('404 Not Found').end('Not found.');
            return;
          }
          res.writeHeader('Content-Type', file.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t').end(body);
        });
      },
    });
    const browser = await launchBrowser(t);
    const { page, errors } = await openPage(browser, server.httpUrl('/'));
    await setStream(page, 'show', 'k');
    await page.click('#hls-panel summary');
    t.equal(await page.inputValue('#hls-url'), '/hls/show/index.m3u8', 'the playlist URL follows the channel');
    await page.click('#hls-play');
    await page.waitForFunction(`(() => { const v = document.getElementById('hls-video'); return v.readyState >= 3 && v.videoWidth > 0 && v.currentTime > 1; })()`);
    t.match(await page.textContent('#hls-status'), /^Playing with hls\.js \d/, 'played by hls.js');
    t.equal(await page.evaluate(`document.getElementById('hls-video').videoWidth`), 320, 'the picture is there');
    await page.click('#hls-stop');
    t.same(errors, [], 'no console errors');
  });
}
