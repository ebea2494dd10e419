import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { chromiumMissing, ensurePageBuilt, goLive, launchBrowser, measured, openPage, screenshotPath, setStream, SKIP_REASON, videoState, waitPlaying } from './helpers.js';
import type { Page } from 'playwright-core';

/** Samples the glass-to-glass latency B reads from the test clock in the picture, `count` distinct values. */
async function glassToGlass(page: Page, count: number): Promise<number[]> {
  const values: number[] = [];
  while (values.length < count) {
    const previous = values.at(-1) ?? -1;
    await page.waitForFunction(`(() => { const v = document.getElementById('play-g2g').dataset.value; return v !== '' && Number(v) !== ${previous}; })()`, undefined, { polling: 100 });
    values.push((await measured(page, 'play-g2g'))!);
  }
  return values;
}

const median = (values: number[]): number => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

if (chromiumMissing) {
  t.plan(0, SKIP_REASON);
} else {
  ensurePageBuilt();

  t.test('glass-to-glass latency with the test clock, and recovery from congestion', { timeout: 55_000 }, async (t) => {
    const server = await startTestServer(t);
    const browser = await launchBrowser(t);
    const a = await openPage(browser, server.httpUrl('/'));
    const b = await openPage(browser, server.httpUrl('/'));
    await setStream(a.page, 'clock', 'k');
    await setStream(b.page, 'clock', 'k');
    await goLive(a.page, 'clock-audio');
    await b.page.click('#play-start');
    await waitPlaying(b.page);

    const before = await glassToGlass(b.page, 8);
    t.comment(`glass-to-glass (clock drawn at A → frame shown by B): median ${median(before).toFixed(0)} ms, samples ${before.map((v) => v.toFixed(0)).join(', ')}`);
    t.ok(median(before) > 0 && median(before) < 3000, 'B reads the clock from the picture, a plausible latency');
    await b.page.screenshot({ path: screenshotPath('clock-player.png'), fullPage: true });

    // Congestion: A's socket reports a full send buffer (as on a slow uplink). A drops its
    // chunks and stops the recorder instead of queueing; when the buffer drains it restarts
    // the recorder, which begins a new WebM stream with a keyframe.
    await a.page.evaluate(`(() => {
      const real = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'bufferedAmount');
      Object.defineProperty(WebSocket.prototype, 'bufferedAmount', { configurable: true, get() { return window.congested ? 1e9 : real.get.call(this); } });
      window.congested = true;
    })()`);
    await a.page.waitForFunction(`document.getElementById('publish-badge').textContent === 'congested'`);
    t.match(await a.page.textContent('#publish-status'), /Network congested/, 'A shows the congestion');
    await a.page.waitForFunction(`/^[1-9]/.test(document.getElementById('pub-dropped').textContent)`);
    t.pass(`A dropped chunks instead of buffering them: ${await a.page.textContent('#pub-dropped')}`);
    await a.page.evaluate(`window.congested = false`);
    await a.page.waitForFunction(`document.getElementById('publish-badge').textContent.includes('live')`);
    t.match(await a.page.textContent('#publish-status'), /restarted after congestion/, 'A restarted its recorder');

    // B continues with the new stream: the restart is seen, playback goes on, latency recovers.
    await b.page.waitForFunction(`document.getElementById('play-events').textContent.endsWith('· 1')`);
    const resumed = await videoState(b.page);
    await waitPlaying(b.page, resumed.currentTime + 3);
    const after = await glassToGlass(b.page, 5);
    t.comment(`after the restart: median ${median(after).toFixed(0)} ms (${after.map((v) => v.toFixed(0)).join(', ')}); jumps · stalls · restarts: ${await b.page.textContent('#play-events')}`);
    t.ok(median(after) < 3000, 'B is live again after the restart');
    t.same(a.errors, [], 'no console errors on A');
    t.same(b.errors, [], 'no console errors on B');
  });
}
