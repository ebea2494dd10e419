// HLS through a real nginx configured as docs/scaling.md says: many players, one server
// request per segment and per playlist lifetime, and no player's playlist ever goes backwards.
import { createHash } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import type { HlsAnswer } from '../../src/bridge/hls.js';
import { packageRoot } from '../../src/paths.js';
import { TestClient } from '../helpers/client.js';
import { nginxMissing, startNginx } from '../helpers/nginx.js';
import { checkNoChildrenAtEnd, makeSample, poll, publishPaced, scratchDir, segmentsOf, startApp } from './helpers.js';

const PLAYERS = 20;
/** How long each player follows the stream. */
const FOLLOW_MS = 12_000;
const SEGMENT_SECONDS = 2;

/** The nginx configuration of docs/scaling.md, pointed at our server, port and folder. */
function documentedConfig(origin: number, port: number, dir: string): string {
  const doc = readFileSync(join(packageRoot, 'docs', 'scaling.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## HLS behind an HTTP cache or CDN'));
  const block = /```nginx\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('no nginx block in docs/scaling.md under "HLS behind an HTTP cache or CDN"');
  const replaced = new Map([
    ['/var/cache/nginx/hls', join(dir, 'cache')],
    ['server 127.0.0.1:8080;', `server 127.0.0.1:${origin};`],
    ['listen 80;', `listen 127.0.0.1:${port};`],
  ]);
  let config = block;
  for (const [from, to] of replaced) {
    if (!config.includes(from)) throw new Error(`docs/scaling.md's nginx block no longer has "${from}"`);
    config = config.replace(from, to);
  }
  return config;
}

interface Fetched {
  status: number;
  body: Buffer;
  cache: string;
}

function fetch(agent: Agent, port: number, path: string): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), cache: String(res.headers['x-cache-status'] ?? '') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** What one player saw. */
interface PlayerLog {
  playlists: number;
  problems: string[];
  /** Segment name → hash of the bytes it got. */
  segments: Map<string, string>;
}

/**
 * A player as hls.js behaves: loads the playlist, downloads the segments it has not got yet,
 * reloads after a target duration (half of one when the playlist had not changed), for
 * `FOLLOW_MS`. Notes everything a player would choke on.
 */
async function player(port: number, startDelayMs: number): Promise<PlayerLog> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const log: PlayerLog = { playlists: 0, problems: [], segments: new Map() };
  await new Promise((resolve) => setTimeout(resolve, startDelayMs));
  const until = Date.now() + FOLLOW_MS;
  const position = new Map<string, number>();
  let lastFirst = -1;
  let lastEnd = -1;
  let previous = '';
  try {
    while (Date.now() < until) {
      const list = await fetch(agent, port, '/hls/show/index.m3u8');
      if (list.status !== 200) {
        log.problems.push(`playlist: ${list.status}`);
        break;
      }
      log.playlists++;
      const body = list.body.toString();
      const names = segmentsOf(body);
      const first = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(body)?.[1]);
      const end = first + names.length;
      if (first < lastFirst) log.problems.push(`media sequence went back from ${lastFirst} to ${first}`);
      if (end < lastEnd) log.problems.push(`the playlist lost its last segments (ended at ${lastEnd}, now ${end})`);
      lastFirst = first;
      lastEnd = end;
      for (const [i, name] of names.entries()) {
        const at = position.get(name);
        if (at !== undefined && at !== first + i) log.problems.push(`${name} moved from ${at} to ${first + i}`);
        position.set(name, first + i);
        if (log.segments.has(name)) continue;
        const segment = await fetch(agent, port, `/hls/show/${name}`);
        if (segment.status !== 200 || segment.body.length === 0) log.problems.push(`${name}: ${segment.status}, ${segment.body.length} bytes`);
        log.segments.set(name, createHash('sha1').update(segment.body).digest('hex'));
      }
      const changed = body !== previous;
      previous = body;
      await new Promise((resolve) => setTimeout(resolve, ((changed ? 1 : 0.5) * SEGMENT_SECONDS * 1000)));
    }
  } finally {
    agent.destroy();
  }
  return log;
}

t.test('many players through nginx as docs/scaling.md configures it', { skip: nginxMissing() }, async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('webm-vp8', { seconds: 24, size: '320x180', videoBitrate: '300k' });
  const { port: origin, url } = await startApp(t, { bridgeHls: 'YES', hlsDir: dir, hlsSegmentSeconds: String(SEGMENT_SECONDS), hlsListSize: '4', hlsKeepAfterEnd: 'YES' });
  const nginx = await startNginx(t, (port, nginxDir) => documentedConfig(origin, port, nginxDir));

  // What reaches the server: every HLS answer it gives.
  const answers: Array<HlsAnswer & { at: number }> = [];
  const listener = (message: unknown): void => void answers.push({ ...(message as HlsAnswer), at: Date.now() });
  subscribe('ws-stream-server:hls', listener);
  t.teardown(() => unsubscribe('ws-stream-server:hls', listener));

  // Before the stream: nginx passes every 404 on (never cached), so the playlist is found as
  // soon as it exists.
  const agent = new Agent({ keepAlive: false });
  t.teardown(() => agent.destroy());
  t.equal((await fetch(agent, nginx.port, '/hls/show/index.m3u8')).status, 404);
  const publisher = await TestClient.connect(url('/show/key/publish'));
  const sending = publishPaced(publisher, sample, 24);
  let notFound = 1;
  await poll('the playlist through nginx', async () => {
    const list = await fetch(agent, nginx.port, '/hls/show/index.m3u8');
    if (list.status === 404) notFound++;
    return list.status === 200;
  }, 20_000, 50);
  const originNotFound = answers.filter((answer) => answer.path === '/hls/show/index.m3u8' && answer.status === 404).length;
  t.equal(originNotFound, notFound, `each of the ${notFound} 404s through nginx came from the server: none was cached`);

  // Players join over two seconds and follow the stream.
  const from = Date.now();
  const fromAnswer = answers.length;
  const logs = await Promise.all(Array.from({ length: PLAYERS }, (_, i) => player(nginx.port, (i * 2000) / PLAYERS)));
  const elapsed = Date.now() - from;
  const reached = answers.slice(fromAnswer);

  // The players saw a sane stream: nothing went backwards, every segment arrived, and the same
  // name always held the same bytes.
  t.same(logs.flatMap((log) => log.problems), [], 'no player saw its playlist go backwards, a segment move, or a failed download');
  const playlists = logs.reduce((sum, log) => sum + log.playlists, 0);
  const bytesOf = new Map<string, Set<string>>();
  for (const log of logs) for (const [name, hash] of log.segments) bytesOf.set(name, (bytesOf.get(name) ?? new Set()).add(hash));
  t.ok(bytesOf.size >= 5, `segments played: ${bytesOf.size}`);
  t.ok([...bytesOf.values()].every((hashes) => hashes.size === 1), 'every player got the same bytes for a segment');
  const segmentRequests = logs.reduce((sum, log) => sum + log.segments.size, 0);

  // The server: at most one request per segment…
  const perSegment = new Map<string, number>();
  for (const answer of reached) if (answer.path.endsWith('.ts')) perSegment.set(answer.path, (perSegment.get(answer.path) ?? 0) + 1);
  const repeated = [...perSegment].filter(([, count]) => count > 1);
  t.same(repeated, [], `one server request per segment (${perSegment.size} segments, ${segmentRequests} downloads by the players)`);
  // …and per playlist lifetime (max-age=1 for 2 s segments): never two within a second.
  const listAnswers = reached.filter((answer) => answer.path === '/hls/show/index.m3u8');
  t.ok(listAnswers.every((answer) => answer.status === 200 || answer.status === 304), 'the server answered every playlist request with 200 or 304');
  const gaps = listAnswers.slice(1).map((answer, i) => answer.at - listAnswers[i]!.at);
  t.ok(gaps.every((gap) => gap >= 900), `server playlist requests at least a second apart (shortest gap ${Math.min(...gaps)} ms)`);
  t.ok(listAnswers.length <= elapsed / 1000 + 1, `${listAnswers.length} server playlist requests in ${(elapsed / 1000).toFixed(1)} s, for ${playlists} player playlist loads`);
  const log = nginx.accessLog();
  t.ok(log.some((line) => / \/hls\/show\/\S+\.ts 200 HIT /.test(line)), 'nginx served segments from its cache');
  t.ok(log.some((line) => / \/hls\/show\/index\.m3u8 200 (HIT|UPDATING) /.test(line)), 'and playlists');
  t.comment(`${playlists + segmentRequests} player requests, ${reached.length} reached the server`);

  await sending;
  await publisher.close();

  // Revalidation, where no new segment can race it: the ended playlist (kept by
  // HLS_KEEP_AFTER_END) never changes again, so once nginx's copy expires, its conditional
  // request must get 304.
  await poll('the ended playlist through nginx', async () => (await fetch(agent, nginx.port, '/hls/show/index.m3u8')).body.includes('#EXT-X-ENDLIST'));
  // nginx says how it answered: from a fresh copy (HIT), or after asking the server about an
  // expired one: REVALIDATED when the server answered 304, EXPIRED when it sent the body again.
  const asked = await poll('nginx asking the server about the expired playlist', async () => {
    const { cache } = await fetch(agent, nginx.port, '/hls/show/index.m3u8');
    return cache === 'REVALIDATED' || cache === 'EXPIRED' ? cache : undefined;
  }, 10_000, 200);
  t.equal(asked, 'REVALIDATED', 'an expired playlist is revalidated: 304 when unchanged');
});

checkNoChildrenAtEnd(t);
