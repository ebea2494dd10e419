// ffmpeg dies or cannot reach its destination: restarts with backoff, viewers never notice.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { checkNoChildrenAtEnd, childProcesses, decodeFile, get, makeSample, listedSegments, outputsOf, poll, publishPaced, scratchDir, segmentsOf, startApp } from './helpers.js';

t.test('ffmpeg killed with SIGKILL mid-stream is restarted and HLS goes on', async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('webm-vp8', { seconds: 14, size: '320x180', videoBitrate: '400k' });
  const { app, url, http, log } = await startApp(t, { bridgeHls: 'YES', hlsDir: dir, hlsSegmentSeconds: '1', hlsListSize: '20' });
  const publisher = await TestClient.connect(url('/live/key/publish'));
  const sending = publishPaced(publisher, sample, 14);
  const bridge = () => app.bridges!.outputs(app.registry.get('live')!)!.bridges[0]!;

  const before = await poll('two segments', async () => {
    const names = await listedSegments(http('/hls/live/index.m3u8'));
    return names.length >= 2 ? names : undefined;
  });
  const pid = bridge().pid!;
  t.ok(childProcesses().some((child) => child.pid === pid), 'ffmpeg is a child of the server process');
  process.kill(pid, 'SIGKILL');
  const restarted = await poll('a new ffmpeg', () => {
    const status = bridge().status();
    return status.state === 'running' && status.pid !== pid ? status : undefined;
  });
  t.match(restarted, { restarts: 1, lastExit: 'killed by SIGKILL' });
  t.match(log.matching(/\[BRIDGE\] hls 'live': ffmpeg killed by SIGKILL while the stream is live/), [/INFO/], 'the exit is logged');
  t.match(log.matching(/restarting ffmpeg in 1 s/), [/INFO/], 'the first restart waits 1 s');
  t.notOk(childProcesses().some((child) => child.pid === pid), 'the killed ffmpeg was reaped (no zombie)');

  // The playlist continues: the old segments stay listed, new ones follow after a discontinuity.
  const after = await poll('segments from the restarted ffmpeg', async () => {
    const response = await get(http('/hls/live/index.m3u8'));
    if (response.status !== 200) return undefined;
    const body = response.body.toString();
    const names = segmentsOf(body);
    return body.includes('#EXT-X-DISCONTINUITY') && names.length >= before.length + 2 ? { body, names } : undefined;
  });
  t.equal(after.names[0], before[0], 'the playlist was continued, not started over');
  const newest = after.names.at(-1)!;
  const file = join(scratchDir(t), newest);
  writeFileSync(file, (await get(http(`/hls/live/${newest}`))).body);
  const decoded = await decodeFile(file);
  t.equal(decoded.errors, '', `a segment written after the restart (${newest}) decodes`);
  t.match(decoded.report, { video: { codec: 'h264' } });
  await sending;
  await publisher.close();
  await poll('the HLS folder to be removed', () => !existsSync(join(dir, 'live')));
});

t.test('an unreachable RTMP destination is retried with backoff, then given up; receivers get every byte', async (t) => {
  const closedPort = await freePort();
  const sample = await makeSample('flv', { seconds: 16, size: '320x180', videoBitrate: '300k' });
  const { app, url, log } = await startApp(t, { bridgeRtmpUrl: `rtmp://127.0.0.1:${closedPort}/live/{channel}`, bridgeMaxRestarts: '3' });
  const receiver = await TestClient.connect(url('/far/key/receive'));
  const publisher = await TestClient.connect(url('/far/key/publish'));
  const sending = publishPaced(publisher, sample, 16, { chunkBytes: 4096 });
  const outputs = await outputsOf(app, 'far');
  await poll('the bridge to give up', () => outputs.bridges[0]!.currentState === 'failed', 20_000);

  const starts = log.matching(/\[BRIDGE\] rtmp 'far': ffmpeg started/).map((line) => Date.parse(line.slice(1, 25)));
  t.equal(starts.length, 4, 'the first start and 3 restarts (BRIDGE_MAX_RESTARTS)');
  const exits = log.matching(/\[BRIDGE\] rtmp 'far': ffmpeg exited with code 1 while the stream is live/).map((line) => Date.parse(line.slice(1, 25)));
  t.equal(exits.length, 4, 'each attempt failed');
  // From each failure to the next start: the backoff (plus a little scheduling).
  const waits = starts.slice(1).map((time, i) => (time - exits[i]!) / 1000);
  t.ok(waits.every((wait, i) => wait >= 2 ** i - 0.01 && wait < 2 ** i + 0.5), `restarts wait 1 s, 2 s, 4 s (measured: ${waits.map((wait) => wait.toFixed(2)).join(', ')} s)`);
  t.match(log.matching(/restarting ffmpeg in/).map((line) => /in ([\d.]+) s/.exec(line)?.[1]), ['1', '2', '4']);
  t.match(log.matching(/giving up on this stream/), [/\[INFO\] \[BRIDGE\] rtmp 'far': giving up on this stream: ffmpeg failed again after 3 restart\(s\) within a minute \(BRIDGE_MAX_RESTARTS; last: exited with code 1, .*\[error\]/]);
  t.match(log.matching(/\[INFO\] \[BRIDGE\] rtmp 'far': ffmpeg: .*\[error\]/), [/Connection refused|Cannot open connection|Input\/output error/], 'ffmpeg\'s errors are logged at info level');
  t.match(outputs.bridges[0]!.status(), { state: 'failed', pid: null, restarts: 3 });

  await sending;
  await poll('the receiver to get everything', () => receiver.binaryBytes >= sample.length);
  t.ok(Buffer.concat(receiver.binaryMessages).equals(sample), 'the WebSocket receiver got the stream byte-exact meanwhile');
  t.notOk(receiver.messages.some((message) => !message.isBinary && message.data.toString().startsWith('ERROR')), 'and no error');
  t.same(childProcesses(), [], 'no ffmpeg left once given up');
  await publisher.close();
  await receiver.closed;
});

checkNoChildrenAtEnd(t);
