import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { chromiumMissing, ensurePageBuilt, goLive, launchBrowser, loadPage, measured, newPage, openPage, setStream, SKIP_REASON, videoState, waitPlaying } from './helpers.js';

if (chromiumMissing) {
  t.plan(0, SKIP_REASON);
} else {
  ensurePageBuilt();

  t.test('a viewer opened 15 s after publishing began starts playing within 3 s', { timeout: 55_000 }, async (t) => {
    const server = await startTestServer(t);
    const browser = await launchBrowser(t);
    const a = await openPage(browser, server.httpUrl('/'));
    await setStream(a.page, 'late', 'k');
    await goLive(a.page, 'camera-mic');
    // The publisher page counts the seconds it has been live.
    await a.page.waitForFunction(`Number(document.getElementById('pub-time').dataset.seconds) >= 15`, undefined, { timeout: 25_000, polling: 100 });

    const c = await newPage(browser);
    const opened = performance.now();
    await loadPage(c.page, server.httpUrl('/'));
    const loaded = performance.now() - opened;
    await setStream(c.page, 'late', 'k');
    await c.page.click('#play-start');
    const clicked = performance.now() - opened;
    await waitPlaying(c.page, 0, 10_000);
    const startup = performance.now() - opened;
    const state = await videoState(c.page);
    await c.page.waitForFunction(`document.getElementById('play-status').dataset.phase === 'playing'`); // the stats caught up
    const received = await c.page.textContent('#play-received');
    const ahead = await measured(c.page, 'play-ahead');
    t.comment(`late viewer: page loaded after ${loaded.toFixed(0)} ms, play pressed after ${clicked.toFixed(0)} ms, playing ${startup.toFixed(0)} ms after its page was opened (received ${received} by then, buffer ahead ${ahead?.toFixed(2)} s, picture ${state.videoWidth}×${state.videoHeight})`);
    t.ok(startup < 3000, `the late viewer started within 3 s (${startup.toFixed(0)} ms)`);
    // waitPlaying saw it playing (readyState >= 3); a moment later, 0.45 s ahead, readyState can
    // be back to 2 while the next data comes (seen once): the picture is what this checks.
    t.ok(state.videoWidth > 0, 'it shows a picture');

    // It plays at the live edge, not from the start of the stream.
    await c.page.waitForFunction(`document.getElementById('player').currentTime >= ${state.currentTime + 2}`, undefined, { timeout: 10_000 });
    const aheadLater = await measured(c.page, 'play-ahead');
    t.ok(aheadLater !== undefined && aheadLater < 2.5, `near the live edge (${aheadLater?.toFixed(2)} s buffered ahead)`);
    t.same(c.errors, [], 'no console errors on the late viewer');
  });
}
