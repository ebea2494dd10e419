// The HTTP side of HLS, made for caches and CDNs: files written by hand (as ffmpeg names them),
// answers checked header by header.
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import t from 'tap';
import { HlsOutput } from '../../src/bridge/hls.js';
import type { HlsAnswer } from '../../src/bridge/hls.js';
import { scratchDir, startApp } from './helpers.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (part: string) => (body += part));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const playlist = (target: number, sequence: number, names: string[], end = false): string =>
  `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:${target}\n#EXT-X-MEDIA-SEQUENCE:${sequence}\n` +
  names.map((name) => `#EXTINF:${target}.000000,\n${name}\n`).join('') +
  (end ? '#EXT-X-ENDLIST\n' : '');

t.test('playlists and segments: cache headers, validators, 304, HEAD, CORS, 404 never cached', async (t) => {
  const dir = scratchDir(t);
  const { port } = await startApp(t, { bridgeHls: 'YES', hlsDir: dir });
  const folder = join(dir, 'show');
  mkdirSync(folder);
  const answers: HlsAnswer[] = [];
  const listener = (message: unknown): void => void answers.push(message as HlsAnswer);
  subscribe('ws-stream-server:hls', listener);
  t.teardown(() => unsubscribe('ws-stream-server:hls', listener));

  // Before the stream writes anything: 404 that no cache may keep.
  const missing = await call(port, '/hls/show/index.m3u8');
  t.equal(missing.status, 404);
  t.equal(missing.headers['cache-control'], 'no-store', 'a 404 is never cached: the playlist may appear a second later');
  t.equal(missing.headers['access-control-allow-origin'], '*');

  for (const name of ['s1-0-3.ts', 's1-0-4.ts', 's1-0-5.ts', 's1-0-6.ts']) writeFileSync(join(folder, name), `bytes of ${name}`);
  writeFileSync(join(folder, 'index.m3u8'), playlist(4, 4, ['s1-0-4.ts', 's1-0-5.ts']));

  const list = await call(port, '/hls/show/index.m3u8');
  t.equal(list.status, 200);
  t.equal(list.headers['content-type'], 'application/vnd.apple.mpegurl');
  t.equal(list.headers['cache-control'], 'public, max-age=2', 'a playlist is cached for half its target duration');
  t.equal(list.headers['access-control-allow-origin'], '*');
  t.match(list.headers['access-control-expose-headers'], /ETag/);
  t.equal(list.headers['last-modified'], undefined, 'no Last-Modified: seconds cannot tell apart two playlists of one second');
  const etag = String(list.headers.etag);
  t.match(etag, /^"[\w-]+"$/, 'a strong ETag');
  t.equal((await call(port, '/hls/show/index.m3u8')).headers.etag, etag, 'the same playlist keeps its ETag');
  const revalidated = await call(port, '/hls/show/index.m3u8', 'GET', { 'if-none-match': `"other", ${etag}` });
  t.equal(revalidated.status, 304, 'If-None-Match with the current ETag among others: 304');
  t.equal(revalidated.body, '');
  t.equal(revalidated.headers.etag, etag);
  t.equal(revalidated.headers['cache-control'], 'public, max-age=2', 'a 304 renews the cache\'s copy for as long');
  t.equal(revalidated.headers['content-length'], undefined, 'no body length on a 304');
  t.equal((await call(port, '/hls/show/index.m3u8', 'GET', { 'if-none-match': '"stale"' })).status, 200, 'another ETag: the new playlist');

  // The playlist changes: a new ETag, the old one gets the new playlist.
  writeFileSync(join(folder, 'index.m3u8'), playlist(4, 5, ['s1-0-5.ts', 's1-0-6.ts']));
  const changed = await call(port, '/hls/show/index.m3u8', 'GET', { 'if-none-match': etag });
  t.equal(changed.status, 200, 'a changed playlist is sent in full to a client holding the old one');
  t.not(changed.headers.etag, etag);
  t.match(changed.body, /s1-0-6\.ts/);
  const head = await call(port, '/hls/show/index.m3u8', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '');
  t.equal(head.headers['content-length'], String(Buffer.byteLength(changed.body)), 'HEAD reports the length');
  t.equal(head.headers.etag, changed.headers.etag);

  // Segments: immutable, with both validators.
  const segment = await call(port, '/hls/show/s1-0-5.ts');
  t.equal(segment.status, 200);
  t.equal(segment.body, 'bytes of s1-0-5.ts');
  t.equal(segment.headers['content-type'], 'video/mp2t');
  t.equal(segment.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.equal(segment.headers['access-control-allow-origin'], '*');
  t.equal(segment.headers['last-modified'], new Date(statSync(join(folder, 's1-0-5.ts')).mtimeMs).toUTCString());
  const segmentTag = String(segment.headers.etag);
  t.equal((await call(port, '/hls/show/s1-0-5.ts', 'GET', { 'if-none-match': segmentTag })).status, 304);
  t.equal((await call(port, '/hls/show/s1-0-5.ts', 'HEAD', { 'if-none-match': segmentTag })).status, 304, 'HEAD with a matching ETag: 304 too');
  t.equal((await call(port, '/hls/show/s1-0-5.ts', 'GET', { 'if-modified-since': String(segment.headers['last-modified']) })).status, 304);
  t.equal((await call(port, '/hls/show/s1-0-5.ts', 'GET', { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' })).status, 200, 'modified since then: 200');
  t.equal((await call(port, '/hls/show/s1-0-5.ts', 'GET', { 'if-modified-since': 'not a date' })).status, 200);
  t.equal((await call(port, '/hls/show/s1-0-5.ts', 'GET', { 'if-none-match': '"x"', 'if-modified-since': String(segment.headers['last-modified']) })).status, 200, 'If-None-Match decides when both are sent');
  const segmentHead = await call(port, '/hls/show/s1-0-5.ts', 'HEAD');
  t.same([segmentHead.status, segmentHead.body, segmentHead.headers['content-length'], segmentHead.headers.etag], [200, '', String('bytes of s1-0-5.ts'.length), segmentTag]);

  // Only complete segments: listed, or dropped from the front of the list; never one after it.
  t.equal((await call(port, '/hls/show/s1-0-4.ts')).status, 200, 'a segment just dropped from the playlist is still served');
  t.equal((await call(port, '/hls/show/s1-0-3.ts')).status, 200);
  writeFileSync(join(folder, 's1-0-7.ts'), 'half of a segm');
  const early = await call(port, '/hls/show/s1-0-7.ts');
  t.equal(early.status, 404, 'a segment the playlist does not list yet (maybe still being written) is 404…');
  t.equal(early.headers['cache-control'], 'no-store', '…and not cached');
  t.equal((await call(port, '/hls/show/s1-1-0.ts')).status, 404, 'nor a later ffmpeg\'s');
  t.equal((await call(port, '/hls/show/s2-0-1.ts')).status, 404, 'nor another session\'s');
  t.equal((await call(port, '/hls/show/s1-0-9.ts', 'HEAD')).status, 404);
  writeFileSync(join(folder, 'index.m3u8'), playlist(4, 6, ['s1-0-6.ts', 's1-0-7.ts']));
  t.equal((await call(port, '/hls/show/s1-0-7.ts')).status, 200, 'once listed, it is served');

  // A playlist caught mid-write (ffmpeg 4 rewrites it in place) is never served.
  for (const cut of ['', '#EXTM3U\n#EXT-X-VERSION:3\n', playlist(4, 6, ['s1-0-6.ts']) + '#EXTINF:4.000000,\n', playlist(4, 6, ['s1-0-6.ts']).slice(0, -3)]) {
    writeFileSync(join(folder, 'index.m3u8'), cut);
    const answer = await call(port, '/hls/show/index.m3u8');
    t.same([answer.status, answer.headers['cache-control']], [404, 'no-store'], `an incomplete playlist (${JSON.stringify(cut.slice(-20))}) is not served`);
  }
  writeFileSync(join(folder, 'index.m3u8'), playlist(1, 0, ['s1-0-6.ts'], true));
  const ended = await call(port, '/hls/show/index.m3u8');
  t.same([ended.status, ended.headers['cache-control']], [200, 'public, max-age=0'], 'an ended playlist is complete; 1 s segments: max-age 0');

  // CORS preflight.
  const preflight = await call(port, '/hls/show/index.m3u8', 'OPTIONS', {
    origin: 'https://player.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'range, x-player',
  });
  t.equal(preflight.status, 204);
  t.equal(preflight.headers['access-control-allow-origin'], '*');
  t.equal(preflight.headers['access-control-allow-methods'], 'GET, HEAD, OPTIONS');
  t.equal(preflight.headers['access-control-allow-headers'], 'range, x-player');
  t.equal(preflight.headers['access-control-max-age'], '86400');
  t.equal(preflight.headers['content-length'], undefined, 'no Content-Length on a 204 (RFC 9110)');
  const odd = await call(port, '/hls/other/anything', 'OPTIONS', { 'access-control-request-headers': 'x-a; evil="1"' });
  t.same([odd.status, odd.headers['access-control-allow-headers']], [204, undefined], 'a strange header list is not echoed');

  // Other shapes under /hls/ are 404 for GET and HEAD alike, with the same headers.
  for (const method of ['GET', 'HEAD']) {
    const other = await call(port, '/hls/show/sub/index.m3u8', method);
    t.same([other.status, other.headers['cache-control'], other.headers['access-control-allow-origin']], [404, 'no-store', '*'], `${method} of another shape`);
  }

  // Every answer is reported on the diagnostics channel.
  t.match(answers.slice(0, 2), [
    { method: 'GET', path: '/hls/show/index.m3u8', status: 404 },
    { method: 'GET', path: '/hls/show/index.m3u8', status: 200 },
  ]);
  t.ok(answers.some((answer) => answer.method === 'HEAD' && answer.path === '/hls/show/s1-0-5.ts' && answer.status === 304));
});

t.test('segment names: unique per session even at the same publishing time, and per ffmpeg start', async (t) => {
  const root = scratchDir(t);
  const settings = { segmentSeconds: 2, listSize: 4 };
  const serially = (task: () => Promise<void>): Promise<void> => task();
  const one = new HlsOutput(root, 'show', 'abc', settings, serially);
  const other = new HlsOutput(root, 'show', 'abc', settings, serially);
  await one.prepare(true);
  await other.prepare(true);
  const pattern = (output: HlsOutput): string => (output.target.kind === 'hls' ? output.target.segments : '');
  t.match(pattern(one), /\/show\/abc[0-9a-f]{6}-0-%d\.ts$/);
  t.not(pattern(one), pattern(other), 'two sessions of one millisecond (another server, a clock set back) never share names');
  t.match(one.target, { append: false }, 'a first ffmpeg starts a new playlist');

  // A restart with no playlist written yet starts one too; with one, continues it under new names.
  await one.prepare(false);
  t.match(one.target, { append: false });
  t.match(pattern(one), /-1-%d\.ts$/);
  const session = /\/(abc[0-9a-f]{6})-/.exec(pattern(one))![1]!;
  writeFileSync(join(root, 'show', `${session}-1-0.ts`), 'listed');
  writeFileSync(join(root, 'show', `${session}-1-1.ts`), 'cut short');
  writeFileSync(join(root, 'show', 'index.m3u8'), playlist(2, 0, [`${session}-1-0.ts`]));
  await one.prepare(false);
  t.match(one.target, { append: true }, 'a restart continues the playlist left');
  t.match(pattern(one), /-2-%d\.ts$/, 'under names no earlier ffmpeg used');
  t.same(readdirSync(join(root, 'show')).sort(), [`${session}-1-0.ts`, 'index.m3u8'], 'the unlisted file was removed');
});
