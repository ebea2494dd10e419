// HLS across an ffmpeg restart: one discontinuity at the seam (none before), names never reused.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { checkNoChildrenAtEnd, get, makeSample, poll, publishPaced, scratchDir, segmentsOf, startApp } from './helpers.js';

/** Media sequence and segment names of a playlist. */
function sequenceOf(body: string): number {
  return Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(body)?.[1] ?? NaN);
}

t.test('a restarted ffmpeg continues the playlist after one discontinuity, with segment names of its own', async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('webm-vp8', { seconds: 14, size: '320x180', videoBitrate: '400k' });
  const { app, url, http } = await startApp(t, { bridgeHls: 'YES', hlsDir: dir, hlsSegmentSeconds: '1', hlsListSize: '20' });
  const folder = join(dir, 'live');
  const publisher = await TestClient.connect(url('/live/key/publish'));
  const sending = publishPaced(publisher, sample, 14);
  const bridge = () => app.bridges!.outputs(app.registry.get('live')!)!.bridges[0]!;

  // Every playlist seen, as a player polling it would see them.
  const seen: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const response = await get(http('/hls/live/index.m3u8'));
      if (response.status === 200) seen.push(response.body.toString());
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  })();

  const before = await poll('two segments', async () => {
    const response = await get(http('/hls/live/index.m3u8'));
    const body = response.body.toString();
    return response.status === 200 && segmentsOf(body).length >= 2 ? body : undefined;
  });
  t.notMatch(before, /#EXT-X-DISCONTINUITY/, 'no discontinuity before any restart');
  const names = segmentsOf(before);
  t.ok(names.every((name) => /^[a-z0-9]+-0-\d+\.ts$/.test(name)), `the first ffmpeg's segments: ${names.join(' ')}`);

  // A segment the playlist does not list yet may be still being written: never served. A
  // restart removes such leftovers (nothing would delete them).
  const unlisted = names[0]!.replace(/-\d+\.ts$/, '-999.ts');
  writeFileSync(join(folder, unlisted), 'cut short');
  t.equal((await get(http(`/hls/live/${unlisted}`))).status, 404, 'a segment not listed yet is 404');

  const pid = bridge().pid!;
  process.kill(pid, 'SIGKILL');
  await poll('a new ffmpeg', () => bridge().status().state === 'running' && bridge().pid !== pid);
  const after = await poll('segments from the restarted ffmpeg', async () => {
    const response = await get(http('/hls/live/index.m3u8'));
    const body = response.body.toString();
    return response.status === 200 && segmentsOf(body).filter((name) => /-1-\d+\.ts$/.test(name)).length >= 2 ? body : undefined;
  });
  watching = false;
  await watcher;

  // One discontinuity, right before the first segment of the new ffmpeg.
  const lines = after.split('\n').filter((line) => line !== '');
  const tags = lines.filter((line) => line === '#EXT-X-DISCONTINUITY');
  t.equal(tags.length, 1, 'one discontinuity');
  const seam = lines.indexOf('#EXT-X-DISCONTINUITY');
  const listed = (from: number, to: number) => lines.slice(from, to).filter((line) => !line.startsWith('#'));
  t.ok(listed(0, seam).length > 0 && listed(0, seam).every((name) => /-0-\d+\.ts$/.test(name)), 'the old segments before it');
  t.ok(listed(seam, lines.length).every((name) => /-1-\d+\.ts$/.test(name)), 'only the new ffmpeg\'s segments after it');
  t.equal(listed(0, seam)[0], names[0], 'the playlist was continued, not started over');
  t.notOk(existsSync(join(folder, unlisted)), 'the unlisted leftover was removed before the restart');

  // What a player saw never went backwards, and a name never changed its place.
  t.ok(seen.length >= 5, `playlists observed: ${seen.length}`);
  const position = new Map<string, number>();
  let last = -1;
  let backwards = 0;
  let moved = 0;
  for (const body of seen) {
    const sequence = sequenceOf(body);
    if (sequence < last) backwards++;
    last = sequence;
    segmentsOf(body).forEach((name, i) => {
      const at = position.get(name);
      if (at !== undefined && at !== sequence + i) moved++;
      position.set(name, sequence + i);
    });
  }
  t.equal(backwards, 0, 'the media sequence never decreased');
  t.equal(moved, 0, 'each name kept its media sequence number');
  await sending;
  await publisher.close();
  await poll('the HLS folder to be removed', () => !existsSync(folder));
});

checkNoChildrenAtEnd(t);
