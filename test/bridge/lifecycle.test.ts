// Startup checks, the stats API, shutdown, and what happens when ffmpeg cannot keep up.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Application } from '../../src/app.js';
import { BridgeManager } from '../../src/bridge/index.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { TestClient, patternBytes } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { startTestServer, suiteWorkers } from '../helpers/server.js';
import { LogLines, checkNoChildrenAtEnd, childProcesses, get, listedSegments, makeSample, poll, publishPaced, scratchDir, startApp } from './helpers.js';

t.test('a bridge without a usable ffmpeg is a startup error; recording alone needs none', async (t) => {
  const dir = scratchDir(t);
  const start = async (flags: Record<string, string>): Promise<Application> => {
    const config = loadConfig({ flags: { httpPort: String(await freePort()), bindAddress: '127.0.0.1', adminAddress: 'off', workers: String(suiteWorkers), ...flags } });
    return Application.start(config);
  };
  await t.rejects(start({ bridgeHls: 'YES', hlsDir: dir, ffmpegPath: join(dir, 'missing') }), {
    name: 'ConfigError',
    setting: 'FFMPEG_PATH',
    message: /^BRIDGE_HLS needs ffmpeg, but FFMPEG_PATH=.*missing is not an executable file\.$/,
  });
  const broken = join(dir, 'broken-ffmpeg');
  writeFileSync(broken, '#!/bin/sh\nexit 3\n');
  chmodSync(broken, 0o755);
  await t.rejects(start({ bridgeRtmpUrl: 'rtmp://127.0.0.1/live/{channel}', recordDir: dir, recordRemux: 'YES', ffmpegPath: broken }), {
    message: /^BRIDGE_RTMP_URL and RECORD_REMUX need ffmpeg, but .*broken-ffmpeg \(FFMPEG_PATH\) does not run/,
  });
  const blocked = join(dir, 'file');
  writeFileSync(blocked, '');
  await t.rejects(start({ bridgeHls: 'YES', hlsDir: join(blocked, 'hls') }), { setting: 'HLS_DIR', message: /HLS_DIR .* cannot be created: ENOTDIR/ });
  const recordOnly = await start({ recordDir: dir, ffmpegPath: join(dir, 'missing') });
  t.ok(recordOnly.bridges, 'recording without RECORD_REMUX starts without ffmpeg');
  await recordOnly.close();
  const plain = await start({});
  t.equal(plain.bridges, undefined, 'nothing configured: no bridge manager at all');
  await plain.close();
  t.ok(new ConfigError('X', 'y') instanceof Error);
});

t.test('the stats API shows bridges and recordings, not as viewers; shutdown ends ffmpeg cleanly', async (t) => {
  const dir = scratchDir(t);
  const adminPort = await freePort();
  const sample = await makeSample('flv', { seconds: 20, size: '320x180', videoBitrate: '300k' });
  const { app, url, http, log } = await startApp(t, {
    adminAddress: `127.0.0.1:${adminPort}`, publicStreamList: 'YES',
    bridgeHls: 'YES', hlsDir: join(dir, 'hls'), hlsSegmentSeconds: '1', hlsKeepAfterEnd: 'YES', recordDir: join(dir, 'rec'),
  });
  const viewer = await TestClient.connect(url('/stats/key/receive'));
  const publisher = await TestClient.connect(url('/stats/key/publish'));
  let stop = false;
  // The shutdown below closes the publisher, whichever send it is in: that one then fails.
  const sending = publishPaced(publisher, sample, 20, { stop: () => stop }).catch(() => undefined);
  await poll('a segment', async () => (await listedSegments(http('/hls/stats/index.m3u8'))).length > 0);

  const channels = JSON.parse((await get(`http://127.0.0.1:${adminPort}/api/v1/channels`)).body.toString()) as { channels: Array<Record<string, unknown>> };
  t.match(channels.channels[0], {
    channel: 'stats',
    receivers: { total: 1, live: 1, receive: 1 },
    bridge: [{ output: 'hls', target: '/hls/stats/index.m3u8', state: 'running', video: 'copy', audio: 'copy', restarts: 0, pid: Number }],
    recording: { state: 'recording', file: /rec\/stats\/\d{8}T\d{6}Z_[\w-]+\.flv$/, bytes: Number, error: null },
  });
  const detail = JSON.parse((await get(`http://127.0.0.1:${adminPort}/api/v1/channels/stats`)).body.toString()) as { receiverList: unknown[] };
  t.equal(detail.receiverList.length, 1, 'the receiver list has the viewer only');
  t.match((JSON.parse((await get(http('/streams'))).body.toString()) as { streams: unknown[] }).streams, [{ channel: 'stats', receivers: 1 }]);

  // Shutdown mid-stream: ffmpeg's stdin is closed, so it finishes the playlist, and nothing is left behind.
  const pid = app.bridges!.outputs(app.registry.get('stats')!)!.bridges[0]!.pid!;
  t.ok(childProcesses().some((child) => child.pid === pid));
  const closing = Date.now();
  await app.close();
  stop = true;
  await sending;
  t.ok(Date.now() - closing < 5000, `close() waited for ffmpeg to finish (${Date.now() - closing} ms), no timeout needed`);
  t.same(childProcesses(), [], 'no ffmpeg child remains after close()');
  t.match(readFileSync(join(dir, 'hls', 'stats', 'index.m3u8'), 'utf8'), /#EXT-X-ENDLIST/, 'ffmpeg ended its playlist: it was stopped through stdin, not killed');
  t.match(log.matching(/\[RECORD\] 'stats': recorded \d+ bytes in 1 file/), [/INFO/], 'the recording was completed');
  await viewer.closed;
});

t.test('ffmpeg too slow: a known container skips to keyframes, an opaque stream restarts ffmpeg', async (t) => {
  const dir = scratchDir(t);
  // A stand-in ffmpeg that reports a version, logs a warning, then never reads its stdin.
  const fake = join(dir, 'ffmpeg');
  writeFileSync(fake, '#!/bin/sh\nif [ "$2" = "-version" ]; then echo "ffmpeg version 9.9-fake"; exit 0; fi\necho "[flv @ 0x1] [warning] a fake warning" >&2\nexec sleep 600\n');
  chmodSync(fake, 0o755);
  const settings = { bridgeRtmpUrl: 'rtmp://127.0.0.1:9/live/{channel}', ffmpegPath: fake, bridgeBufferMb: '0.1' } as const;
  const log = new LogLines();
  const config = loadConfig({ flags: { httpPort: '1', ...settings } });
  const manager = (await BridgeManager.create(config, log.logger, { stopTimeouts: { endMs: 100, termMs: 2000 } }))!;
  t.match(log.lines[0], /\[INFO\] \[BRIDGE\] ffmpeg 9\.9-fake: .*ffmpeg \(FFMPEG_PATH\)/);
  const server = await startTestServer(t, settings, { publishObservers: [manager], logger: log.logger });

  // WebM: the bridge falls behind and skips ahead to keyframes; ffmpeg keeps running.
  const sample = await makeSample('webm-vp8', { seconds: 4, size: '320x180', videoBitrate: '2000k', gop: 10 });
  const webm = await TestClient.connect(server.url('/webm/key/publish'));
  await publishPaced(webm, sample, 1);
  const bridge = manager.outputs(server.registry.get('webm')!)!.bridges[0]!;
  await poll('a skip', () => bridge.status().skips > 0);
  t.match(bridge.status(), { state: 'running', restarts: 0 }, 'no restart for a container with keyframes');
  t.match(log.matching(/\[DEBUG\] \[BRIDGE\] rtmp 'webm': ffmpeg: \[flv @ 0x1\] \[warning\] a fake warning/), [/DEBUG/], 'ffmpeg warnings are logged at debug level');
  await webm.close();

  // Opaque bytes: no keyframe to skip to, so ffmpeg is restarted; a viewer is not affected.
  const viewer = await TestClient.connect(server.url('/blob/key/receive'));
  const publisher = await TestClient.connect(server.url('/blob/key/publish'));
  const bytes = patternBytes(1024 * 1024, 7);
  await publishPaced(publisher, bytes, 0.5, { chunkBytes: 32 * 1024 });
  await poll('the restart', () => log.matching(/\[BRIDGE\] rtmp 'blob': ffmpeg started/).length >= 2, 10_000);
  t.match(log.matching(/rtmp 'blob': ffmpeg cannot keep up/), [/no keyframes to skip to: restarting ffmpeg/]);
  const opaque = manager.outputs(server.registry.get('blob')!)!.bridges[0]!;
  t.match(opaque.status(), { restarts: 1, lastExit: 'restarted: too slow' });
  await poll('the viewer to get everything', () => viewer.binaryBytes >= bytes.length);
  t.ok(Buffer.concat(viewer.binaryMessages).equals(bytes), 'the viewer got every byte');
  await publisher.close();
  await viewer.closed;
  await server.close();
  t.same(childProcesses('sleep'), [], 'the stand-ins were stopped (SIGTERM after stdin EOF was ignored)');
});

checkNoChildrenAtEnd(t);
