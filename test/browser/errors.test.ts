import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { chromiumMissing, ensurePageBuilt, goLive, launchBrowser, openPage, screenshotPath, setStream, SKIP_REASON } from './helpers.js';

if (chromiumMissing) {
  t.plan(0, SKIP_REASON);
} else {
  ensurePageBuilt();

  t.test('the page shows what the server says and why connections end', { timeout: 55_000 }, async (t) => {
    const server = await startTestServer(t);
    const browser = await launchBrowser(t);
    const a = await openPage(browser, server.httpUrl('/'));
    await setStream(a.page, 'guarded', 'right-key');
    await goLive(a.page, 'camera');

    // A viewer with the wrong key: the server's ERROR text is shown as an alert.
    const b = await openPage(browser, server.httpUrl('/'));
    await setStream(b.page, 'guarded', 'wrong-key');
    await b.page.click('#play-start');
    await b.page.waitForFunction(`!document.getElementById('play-alert').hidden`);
    t.equal(await b.page.textContent('#play-alert'), 'ERROR: Invalid streaming key', 'B shows the server’s error text');
    t.match(await b.page.textContent('#play-status'), /code 1008/, 'and the close code, with what it means');
    t.equal(await b.page.textContent('#play-badge'), 'off', 'B stopped (no reconnect loop on a wrong key)');
    t.equal(await b.page.isEnabled('#play-start'), true, 'Play can be pressed again');
    t.same(b.errors, [], 'no console errors on B');
    await b.page.screenshot({ path: screenshotPath('wrong-key.png'), fullPage: true });

    // A second publisher on the same channel is refused at the upgrade (403): browsers do not
    // show HTTP answers to scripts, so the page lists the likely reasons.
    const c = await openPage(browser, server.httpUrl('/'));
    await setStream(c.page, 'guarded', 'right-key');
    await c.page.selectOption('#source', 'clock');
    await c.page.click('#go-live');
    await c.page.waitForFunction(`!document.getElementById('publish-alert').hidden`);
    t.match(await c.page.textContent('#publish-alert'), /refused the connection.*already being published/, 'C explains the refusal');
    t.equal(await c.page.isEnabled('#go-live'), true, 'C can try again');

    // Invalid ids are caught in the page, before connecting.
    await setStream(c.page, 'bad channel!', 'k');
    await c.page.click('#go-live');
    t.match(await c.page.textContent('#publish-alert'), /channel must be 1 to 128 letters/, 'an invalid channel is explained');
    t.equal(await c.page.evaluate(`document.activeElement.id`), 'channel', 'and focused');

    // A container or codec MSE cannot play: a clear message instead of a black video.
    // (Chromium records H.264 into WebM, but its MSE plays H.264 only in MP4.)
    const h264 = 'video/webm;codecs=h264,opus';
    if ((await c.page.locator(`#format option[value="${h264}"]`).count()) === 0) {
      t.skip('this Chromium cannot record H.264 in WebM: fallback message not exercised', () => undefined);
    } else {
      await setStream(c.page, 'h264', 'k');
      await c.page.selectOption('#format', h264);
      await goLive(c.page, 'camera');
      const d = await openPage(browser, server.httpUrl('/'));
      await setStream(d.page, 'h264', 'k');
      await d.page.click('#play-start');
      await d.page.waitForFunction(`!document.getElementById('play-alert').hidden`);
      t.match(await d.page.textContent('#play-alert'), /cannot play video\/webm; codecs="avc1\.\w+" through Media Source Extensions \(H\.264 in WebM: publish VP8 or VP9 instead\)/, 'D explains that it cannot play H.264 in WebM');
      t.equal(await d.page.textContent('#play-badge'), 'cannot play');
      t.same(d.errors, [], 'no console errors on D');
      await c.page.click('#stop-publish');
    }

    // Killing the publisher through the server: A shows the close.
    t.ok(server.killPublisher('guarded', '*'), 'killed A through the server');
    await a.page.waitForFunction(`document.getElementById('publish-badge').textContent === 'off'`);
    t.match(await a.page.textContent('#publish-status'), /Stream killed/, 'A shows why it stopped');
    t.same(a.errors, [], 'no console errors on A');
  });
}
