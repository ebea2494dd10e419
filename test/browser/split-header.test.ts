// Issue 16, item 9: a viewer that is waiting when the publisher starts plays whatever the
// publisher's chunking. A Node publisher replays a real MediaRecorder recording with its first
// message 1 byte long (as Chromium's MediaRecorder sometimes sends it) and the header cut at
// several offsets (EBML header, Segment, Tracks); each viewer page was opened before. Then the
// publisher stops: the viewer shows one clear "stream ended" state, never "stalled".
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import type { Page } from 'playwright-core';
import { StreamPublisher } from '../../src/client/index.js';
import { startTestServer } from '../helpers/server.js';
import { chromiumMissing, ensurePageBuilt, launchBrowser, openPage, screenshotPath, setStream, SKIP_REASON } from './helpers.js';

const FIXTURES = new URL('../fixtures/', import.meta.url);
const recording = readFileSync(new URL('mediarecorder-vp8-opus.webm', FIXTURES));
const { chunkSizes, timesliceMs } = JSON.parse(readFileSync(new URL('mediarecorder-vp8-opus.chunks.json', FIXTURES), 'utf8')) as { chunkSizes: number[]; timesliceMs: number };
/** The init ends where the first Cluster (1f 43 b6 75) begins. */
const initEnd = recording.indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]));

/** The recording as messages: the first ones cut at `offsets`, the rest as MediaRecorder cut it. */
function messages(offsets: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const offset of offsets) {
    out.push(recording.subarray(at, offset));
    at = offset;
  }
  let end = 0;
  for (const size of chunkSizes) {
    end += size;
    if (end <= at) continue;
    out.push(recording.subarray(at, end));
    at = end;
  }
  return out;
}

/** Sends the messages at the recorder's pace (one timeslice apart once past the header), as a live publisher does. */
async function replay(publisher: StreamPublisher, parts: readonly Buffer[]): Promise<void> {
  for (const part of parts) {
    publisher.write(part);
    if (part.length > 100) await delay(timesliceMs);
  }
}

/** Records every value the play status's data-phase takes from now on (the page rewrites it on each 200 ms tick). */
async function recordPhases(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    const status = document.getElementById('play-status');
    window.phases = [];
    new MutationObserver(() => window.phases.push(status.dataset.phase)).observe(status, { attributes: true, attributeFilter: ['data-phase'] });
  })()`);
}

const VARIANTS: Array<[string, number[]]> = [
  ['a 1-byte first message', [1]],
  ['1 byte, then cuts inside the EBML header', [1, 4, 20]],
  ['1 byte, then cuts in the Segment header and the Info', [1, 40, 45, 60]],
  ['1 byte, then cuts inside the Tracks', [1, initEnd - 60, initEnd - 5]],
  ['1 byte, then the rest of the header with part of the first Cluster', [1, initEnd + 3]],
];

if (chromiumMissing) {
  t.plan(0, SKIP_REASON);
} else {
  ensurePageBuilt();

  t.test('viewers waiting before the publisher starts play a header split anywhere, then show the end', { timeout: 90_000 }, async (t) => {
    t.ok(initEnd > 100, `the recording's header is ${initEnd} bytes`);
    const server = await startTestServer(t);
    const browser = await launchBrowser(t);

    // The viewers first, each on its own channel, all waiting for their publisher.
    const viewers = await Promise.all(
      VARIANTS.map(async (_, index) => {
        const viewer = await openPage(browser, server.httpUrl('/'));
        await setStream(viewer.page, `split${index}`, 'k');
        await viewer.page.click('#play-start');
        await viewer.page.waitForFunction(`document.getElementById('play-status').textContent.includes('waiting for a publisher')`);
        return viewer;
      }),
    );

    // The publishers, each cutting the header its own way; the last one restarts its stream on
    // the same connection (a recorder restarted after congestion), the new header cut too.
    const publishers = await Promise.all(VARIANTS.map((_, index) => StreamPublisher.connect(server.url(`/split${index}/k`))));
    const restarting = VARIANTS.length - 1;
    // Each publisher stops right after its last chunk, as the page's Stop does.
    const sentEach = VARIANTS.map(async ([, offsets], index) => {
      await replay(publishers[index]!, messages(offsets));
      if (index === restarting) await replay(publishers[index]!, messages([1, 30]));
      await publishers[index]!.end();
    });
    const phasesRecorded = viewers.map(({ page }, index) => sentEach[index]!.then(() => recordPhases(page)));

    // All at once: the recording lasts 6 s. Each state is read in one go inside the page.
    const playing = (from: number): string =>
      `(() => { const v = document.getElementById('player'); return v.readyState >= 3 && v.videoWidth > 0 && !v.paused && v.currentTime > ${from} && { readyState: v.readyState, width: v.videoWidth, currentTime: v.currentTime }; })()`;
    const watched = await Promise.all(
      viewers.map(async ({ page }) => {
        const first = (await (await page.waitForFunction(playing(0), undefined, { timeout: 20_000, polling: 50 })).jsonValue()) as { readyState: number; width: number; currentTime: number };
        const later = (await (await page.waitForFunction(playing(first.currentTime + 1.5), undefined, { timeout: 10_000, polling: 50 })).jsonValue()) as typeof first;
        return { first, later, status: (await page.textContent('#play-status')) ?? '' };
      }),
    );
    for (const [index, [name]] of VARIANTS.entries()) {
      const { first, later, status } = watched[index]!;
      t.ok(first.width === 320 && first.readyState >= 3, `${name}: plays the 320×240 picture (readyState ${first.readyState})`);
      t.ok(later.currentTime - first.currentTime >= 1.5 && later.readyState >= 3, `${name}: and keeps playing: currentTime advanced ${(later.currentTime - first.currentTime).toFixed(2)} s`);
      t.notMatch(status, /middle of the stream/, `${name}: not taken for the middle of a stream`);
    }

    const restarter = viewers[restarting]!.page;
    await restarter.waitForFunction(`document.getElementById('player').currentTime > 6.5`, undefined, { timeout: 15_000 });
    t.match(await restarter.textContent('#play-events'), /· 1$/, 'the second stream start, split too, was found (1 restart) and plays on after the first stream');

    // Once each publisher has ended, its viewer plays out what it has, then says the stream ended, once.
    await Promise.all(phasesRecorded);

    for (const [index, { page, errors }] of viewers.entries()) {
      await page.waitForFunction(`window.phases.includes('finished')`, undefined, { timeout: 15_000 });
      const phases = await page.evaluate<string[]>(`window.phases`);
      const upTo = phases.indexOf('finished');
      // A few more ticks: it stays there.
      await page.waitForFunction(`window.phases.length >= ${phases.length + 5}`);
      const after = (await page.evaluate<string[]>(`window.phases`)).slice(upTo);
      t.same([...new Set(phases.slice(0, upTo))].filter((phase) => phase !== 'playing'), [], `viewer ${index}: after the publisher ended, only playing until the end (${[...new Set(phases.slice(0, upTo))].join(', ')})`);
      t.same([...new Set(after)], ['finished'], `viewer ${index}: then one ended state, which stays`);
      t.equal(await page.textContent('#play-status'), `The publisher ended the stream. Waiting for the next stream on “split${index}”…`);
      t.equal(await page.textContent('#play-badge'), 'stream ended');
      t.same(errors, [], `viewer ${index}: no console errors`);
    }
    await viewers[0]!.page.screenshot({ path: screenshotPath('stream-ended.png'), fullPage: true });

    // The next publisher on the channel: the waiting viewer plays again, after what it showed.
    const { page } = viewers[0]!;
    const ended = (await page.evaluate<number>(`document.getElementById('player').currentTime`)) ?? 0;
    t.equal(await page.evaluate<boolean>(`document.getElementById('player').paused`), true, 'the ended stream stays paused on its last frame');
    const next = await StreamPublisher.connect(server.url('/split0/k'));
    const replayed = replay(next, messages([1, 2]));
    await page.waitForFunction(playing(ended + 1), undefined, { timeout: 15_000, polling: 50 });
    t.pass('the next stream plays in the same viewer');
    await replayed;
    await next.end();
  });
}
