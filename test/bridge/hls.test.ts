// HLS written by the bridge's ffmpeg and served by the server itself.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { checkNoChildrenAtEnd, decodeFile, get, makeSample, listedSegments, poll, publishPaced, scratchDir, segmentsOf, startApp } from './helpers.js';

/** A GET with the path sent exactly as given (fetch would resolve dot segments itself). */
function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (part: string) => (body += part));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET whose client reads nothing for `pauseMs` (the server must wait for it), then the body. */
async function slowGet(port: number, path: string, pauseMs: number): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  socket.pause();
  await new Promise((resolve) => setTimeout(resolve, pauseMs));
  const parts: Buffer[] = [];
  socket.on('data', (part: Buffer) => parts.push(part));
  socket.resume();
  await new Promise((resolve) => socket.once('close', resolve));
  const response = Buffer.concat(parts);
  return response.subarray(response.indexOf('\r\n\r\n') + 4);
}

t.test('HLS: playlist and segments served over HTTP, old segments deleted, files removed at the end', async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('webm-vp8', { seconds: 12, size: '480x270', videoBitrate: '600k' });
  const { app, url, http, port } = await startApp(t, { bridgeHls: 'YES', hlsDir: dir, hlsSegmentSeconds: '1', hlsListSize: '3' });
  const folder = join(dir, 'show');
  const publisher = await TestClient.connect(url('/show/key/publish'));
  const started = Date.now();
  const sending = publishPaced(publisher, sample, 12);

  const first = await poll('the playlist', async () => {
    const response = await get(http('/hls/show/index.m3u8'));
    return response.status === 200 && segmentsOf(response.body.toString()).length > 0 ? response : undefined;
  });
  const appearedAfter = (Date.now() - started) / 1000;
  t.ok(appearedAfter < 6, `the playlist appears within a few segment durations (${appearedAfter.toFixed(1)} s)`);
  t.equal(first.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  // 1 s segments: half the target duration is under HTTP's smallest max-age.
  t.equal(first.headers.get('cache-control'), 'public, max-age=0');
  t.equal(first.headers.get('access-control-allow-origin'), '*');
  t.match(first.body.toString(), /^#EXTM3U\n[\s\S]*#EXT-X-TARGETDURATION:1\n/, 'a live playlist of 1 s segments');
  t.notMatch(first.body.toString(), /#EXT-X-DISCONTINUITY/, 'a first ffmpeg starts the playlist without a discontinuity');

  // Segments download from our server and decode cleanly.
  const playlist = await poll('three segments listed', async () => {
    const body = (await get(http('/hls/show/index.m3u8'))).body.toString();
    return segmentsOf(body).length >= 3 ? body : undefined;
  });
  let decoded = 0;
  for (const name of segmentsOf(playlist)) {
    const segment = await get(http(`/hls/show/${name}`));
    if (segment.status === 404) continue; // deleted meanwhile: the playlist moved on
    t.equal(segment.status, 200, `${name} downloads`);
    t.equal(segment.headers.get('content-type'), 'video/mp2t');
    t.equal(segment.headers.get('access-control-allow-origin'), '*');
    const file = join(scratchDir(t), name);
    writeFileSync(file, segment.body);
    const { errors, report } = await decodeFile(file);
    t.equal(errors, '', `${name} decodes without errors`);
    t.match(report, { video: { codec: 'h264' }, audio: { codec: 'aac' } });
    decoded++;
  }
  t.ok(decoded >= 2, `segments decoded: ${decoded}`);

  // Old segments are deleted as they leave the playlist.
  const firstSegment = segmentsOf(playlist)[0]!;
  await poll('the first segment to be deleted', () => !existsSync(join(folder, firstSegment)));
  t.equal((await get(http(`/hls/show/${firstSegment}`))).status, 404, 'a deleted segment is 404');
  const onDisk = readdirSync(folder).filter((name) => name.endsWith('.ts'));
  t.ok(onDisk.length <= 3 + 2, `segments on disk stay near HLS_LIST_SIZE (${onDisk.length})`);
  const status = app.bridges!.outputs(app.registry.get('show')!)!.bridges[0]!.status();
  t.match(status, { output: 'hls', target: '/hls/show/index.m3u8', state: 'running', video: 'transcode', audio: 'transcode' });

  // A large file is streamed with backpressure rather than read whole: same bytes, even to a
  // client that stops reading for a while. (Written under the deleted segment's name: a name
  // before the playlist's first entry is served if present.)
  const big = Buffer.alloc(16 * 1024 * 1024 + 123);
  for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE(i, i);
  writeFileSync(join(folder, firstSegment), big);
  const large = await get(http(`/hls/show/${firstSegment}`));
  t.equal(large.status, 200);
  t.equal(large.headers.get('content-length'), String(big.length));
  t.ok(large.body.equals(big), 'a 16 MiB file arrives intact');
  t.ok((await slowGet(port, `/hls/show/${firstSegment}`, 500)).equals(big), 'also to a client that paused reading');

  // Path tricks and unknown names are 404; nothing outside the channel folders is reachable
  // (checked while the channel's folder exists).
  writeFileSync(join(dir, 'secret.ts'), 'secret');
  for (const path of [
    '/hls/unknown/index.m3u8',
    '/hls/../secret.ts',
    '/hls/show/../../secret.ts',
    '/hls/show/..%2fsecret.ts',
    '/hls/show/..%2F..%2Fsecret.ts',
    '/hls/%2e%2e/secret.ts',
    '/hls/show/%2e%2e',
    '/hls/show%2f..%2fsecret.ts',
    '/hls/show/secret.ts%00',
    '/hls/show/index.m3u8.tmp',
    '/hls/show/.hidden.ts',
    '/hls/show/a.b.ts',
    '/hls/show/',
    '/hls/secret.ts',
  ]) {
    const answer = await rawGet(port, path);
    t.equal(answer.status, 404, `${path} is 404`);
    t.notMatch(answer.body, /secret/);
  }
  await sending;
  await publisher.close();
  await poll('the channel\'s HLS files to be removed', () => !existsSync(folder));
  t.equal((await get(http('/hls/show/index.m3u8'))).status, 404, 'the playlist is gone with the stream');

});

t.test('HLS_KEEP_AFTER_END keeps the last session until the channel is published again; WebSocket routes are untouched', async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('flv', { seconds: 5, size: '320x180', videoBitrate: '300k', gop: 25 });
  const { url, http, port } = await startApp(t, { bridgeHls: 'YES', hlsDir: dir, hlsSegmentSeconds: '1', hlsListSize: '10', hlsKeepAfterEnd: 'YES' });
  const publisher = await TestClient.connect(url('/kept/key/publish'));
  await publishPaced(publisher, sample, 5);
  await poll('a segment', async () => (await listedSegments(http('/hls/kept/index.m3u8'))).length > 0);
  await publisher.close();
  const ended = await poll('the final playlist', async () => {
    const body = (await get(http('/hls/kept/index.m3u8'))).body.toString();
    return body.includes('#EXT-X-ENDLIST') ? body : undefined;
  });
  const kept = segmentsOf(ended);
  t.ok(kept.length >= 3, `the ended stream stays playable as VOD (${kept.length} segments)`);
  t.equal((await get(http(`/hls/kept/${kept[0]!}`))).status, 200, 'its segments are still served');

  // Published again: the old session's files make way for the new one.
  const again = await TestClient.connect(url('/kept/key/publish'));
  const sending = publishPaced(again, sample, 5);
  const fresh = await poll('the new session\'s playlist', async () => {
    const names = await listedSegments(http('/hls/kept/index.m3u8'));
    return names.length > 0 && !names.includes(kept[0]!) ? names : undefined;
  });
  t.notOk(existsSync(join(dir, 'kept', kept[0]!)), 'the previous session\'s segments are removed');
  t.notSame(fresh[0]!.split('-')[0], kept[0]!.split('-')[0], 'segment names carry the session, so caches never mix sessions');

  // `/hls/<x>/index.m3u8` has the shape of a stream path: an upgrade there is refused by the stream route…
  const refused = await rawGet(port, '/hls/kept/index.m3u8', {
    connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
  });
  t.same(refused, { status: 404, body: 'Invalid connection kind.' });
  // …and a channel named "hls" still works over WebSocket.
  const receiver = await TestClient.connect(url('/hls/key/receive'));
  await receiver.close();
  await sending;
  await again.close();
});

checkNoChildrenAtEnd(t);
