import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { chromiumMissing, ensurePageBuilt, goLive, launchBrowser, measured, openPage, screenshotPath, setStream, SKIP_REASON, videoState, waitPlaying } from './helpers.js';

if (chromiumMissing) {
  t.plan(0, SKIP_REASON);
} else {
  ensurePageBuilt();

  t.test('page A publishes the fake camera and microphone, page B plays it through MSE', { timeout: 55_000 }, async (t) => {
    const server = await startTestServer(t);
    const browser = await launchBrowser(t);
    const a = await openPage(browser, server.httpUrl('/'));
    const b = await openPage(browser, server.httpUrl('/'));
    await setStream(a.page, 'cam', 'secret');
    await setStream(b.page, 'cam', 'secret');

    await goLive(a.page, 'camera-mic');
    t.equal(await a.page.textContent('#pub-format'), 'WEBM · vp8 + opus', 'A records WebM VP8 + Opus');

    await b.page.click('#play-start');
    await waitPlaying(b.page);
    const first = await videoState(b.page);
    t.ok(first.readyState >= 3, `B readyState ${first.readyState} >= 3`);
    t.ok(first.videoWidth > 0, `B shows a ${first.videoWidth}×${first.videoHeight} picture`);

    // Playback keeps going: currentTime advances by at least 5 s.
    await b.page.waitForFunction(`document.getElementById('player').currentTime >= ${first.currentTime + 5}`, undefined, { timeout: 15_000 });
    const later = await videoState(b.page);
    t.ok(later.currentTime - first.currentTime >= 5, `currentTime advanced ${(later.currentTime - first.currentTime).toFixed(2)} s`);
    t.ok(later.readyState >= 3 && !later.paused, 'still playing');

    // What B measures (no clock in the camera picture: receiver-side numbers only).
    await b.page.waitForFunction(`document.getElementById('play-a2d').dataset.value !== ''`);
    const arrivalToDisplay = await measured(b.page, 'play-a2d');
    const ahead = await measured(b.page, 'play-ahead');
    t.comment(`B latency: arrival→display ${arrivalToDisplay?.toFixed(0)} ms, buffer ahead ${ahead?.toFixed(2)} s (plus the publisher's 250 ms timeslice and loopback transit, which B cannot see)`);
    t.ok(arrivalToDisplay !== undefined && arrivalToDisplay < 3000, 'a chunk is on screen within 3 s of arriving (a loose bound: busy CI machines)');
    t.ok(ahead !== undefined && ahead < 2.5, 'B stays near the live edge');

    // The probe reads the stream's first chunk.
    await b.page.click('#probe');
    await b.page.waitForFunction(`document.getElementById('probe-result').textContent.includes('first chunk is')`);
    const probe = (await b.page.textContent('#probe-result')) ?? '';
    t.match(probe, /first chunk is [\d,]+ bytes; this page reads it as WEBM, vp8 \+ opus, \d+×\d+/, `probe: ${probe.slice(0, 90)}…`);

    await a.page.screenshot({ path: screenshotPath('publisher.png'), fullPage: true });
    await b.page.screenshot({ path: screenshotPath('player.png'), fullPage: true });
    await b.page.setViewportSize({ width: 390, height: 844 });
    await b.page.screenshot({ path: screenshotPath('player-phone.png'), fullPage: true });

    // The publisher stops: B says so.
    await a.page.click('#stop-publish');
    await a.page.waitForFunction(`document.getElementById('publish-badge').textContent === 'off'`);
    await b.page.waitForFunction(`document.getElementById('play-status').textContent.includes('publisher ended')`);
    t.pass('B shows that the publisher ended');

    t.same(a.errors, [], 'no console errors on A');
    t.same(b.errors, [], 'no console errors on B');
  });
}
