// RTMP push into a real RTMP server (node-media-server, on loopback), read back with ffmpeg.
import t from 'tap';
import type { Test } from 'tap';
import { TestClient } from '../helpers/client.js';
import { FFMPEG, checkNoChildrenAtEnd, ffmpeg, ffmpegVersion, makeSample, poll, publishPaced, readBack, startApp, startRtmpServer } from './helpers.js';
import type { ReadBack } from './helpers.js';

t.comment(`ffmpeg ${await ffmpegVersion(FFMPEG)} (${FFMPEG}), also used by the server under test`);

t.test('WebM VP8+Opus is transcoded to H.264 (scaled down) + AAC and pushed over RTMP', async (t) => {
  const rtmp = await startRtmpServer(t);
  const sample = await makeSample('webm-vp8', { seconds: 10, size: '640x360', videoBitrate: '800k' });
  const { app, url, log } = await startApp(t, {
    bridgeRtmpUrl: `rtmp://127.0.0.1:${rtmp.port}/live/{channel}-{streamId}`,
    bridgeMaxHeight: '240',
    bridgeVideoBitrate: '500k',
  });
  t.match(log.matching(/\[BRIDGE\] ffmpeg/)[0], /\[INFO\] \[BRIDGE\] ffmpeg \S+: \/\S+ \(/, 'the startup log says which ffmpeg and its version');
  const publisher = await TestClient.connect(url('/show/key/publish'));
  const sending = publishPaced(publisher, sample, 10);
  const path = await poll('the RTMP stream to be published', () => rtmp.published.find((name) => name.startsWith('/live/show-')));
  const streamId = app.registry.get('show')!.publisher!.streamId;
  t.equal(path, `/live/show-${streamId}`, 'the destination comes from the template: {channel} and {streamId} filled in');
  // Read while the stream is live, until it ends: the tail must arrive too.
  const reading = readBack(t, rtmp.url(path));
  const channel = app.registry.get('show')!;
  const [bridge] = app.bridges!.outputs(channel)!.bridges;
  t.match(bridge!.status(), { output: 'rtmp', state: 'running', video: 'transcode', audio: 'transcode', restarts: 0 });
  t.match(bridge!.status().target, /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/…$/, 'the target shown is redacted past the application');
  const command = log.matching(/\[DEBUG\] \[BRIDGE\] rtmp 'show': webm/)[0] ?? '';
  t.match(command, /VP8 640x360, Opus\) → video transcode, audio transcode: \S+ .*-c:v libx264 -preset veryfast -tune zerolatency/, 'the command line is in the debug log');
  t.notMatch(command, /show-/, 'without the stream name past the application (it may be a stream key)');
  await sending;
  await publisher.close();
  const report = await reading;
  t.match(report.video, { codec: 'h264', height: 240 }, 'H.264 at the scaled height');
  t.equal(report.video?.width, 426, '640x360 scaled to 240 lines keeps the aspect (even width)');
  t.match(report.audio, { codec: 'aac' }, 'AAC audio');
  checkTail(t, report, 10, { video: true, audio: true });
  await poll('the bridge to stop', () => app.bridges!.outputs(channel) === undefined);
});

t.test('FLV H.264/AAC is pushed as it is (codec copy)', async (t) => {
  const rtmp = await startRtmpServer(t);
  // x264's ultrafast preset writes Constrained Baseline; a transcode (veryfast) would be High.
  const sample = await makeSample('flv', { seconds: 8, size: '480x270', videoBitrate: '600k' });
  const { app, url, log } = await startApp(t, { bridgeRtmpUrl: `rtmp://127.0.0.1:${rtmp.port}/live/{channel}` });
  const publisher = await TestClient.connect(url('/copy/key/publish'));
  const sending = publishPaced(publisher, sample, 8);
  await poll('the RTMP stream to be published', () => rtmp.published.includes('/live/copy'));
  const reading = readBack(t, rtmp.url('/live/copy'));
  const [bridge] = app.bridges!.outputs(app.registry.get('copy')!)!.bridges;
  t.match(bridge!.status(), { video: 'copy', audio: 'copy' });
  t.match(log.matching(/\[BRIDGE\] rtmp 'copy': flv/)[0], /-c:v copy -c:a copy -f flv/);
  await sending;
  await publisher.close();
  const report = await reading;
  t.match(report.video, { codec: 'h264', profile: 'Constrained Baseline', width: 480, height: 270 }, 'the publisher\'s own H.264, untouched');
  t.match(report.audio, { codec: 'aac' });
  checkTail(t, report, 8, { video: true, audio: true });
});

t.test('audio-only and video-only streams are bridged too', async (t) => {
  const rtmp = await startRtmpServer(t);
  const audioOnly = await makeSample('webm-vp8', { seconds: 8, audioOnly: true });
  const { stdout: videoOnly } = await ffmpeg([
    '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-t', '8',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-f', 'flv', 'pipe:1',
  ]);
  const { app, url } = await startApp(t, { bridgeRtmpUrl: `rtmp://127.0.0.1:${rtmp.port}/live/{channel}` });
  const audio = await TestClient.connect(url('/audio/key/publish'));
  const video = await TestClient.connect(url('/video/key/publish'));
  const sending = Promise.all([publishPaced(audio, audioOnly, 8), publishPaced(video, videoOnly, 8)]);
  await poll('both RTMP streams', () => rtmp.published.includes('/live/audio') && rtmp.published.includes('/live/video'));
  const reading = Promise.all([readBack(t, rtmp.url('/live/audio')), readBack(t, rtmp.url('/live/video'))]);
  t.match(app.bridges!.outputs(app.registry.get('audio')!)!.bridges[0]!.status(), { video: 'none', audio: 'transcode' });
  t.match(app.bridges!.outputs(app.registry.get('video')!)!.bridges[0]!.status(), { video: 'copy', audio: 'none' });
  await sending;
  await Promise.all([audio.close(), video.close()]);
  const [heard, seen] = await reading;
  t.match(heard, { audio: { codec: 'aac' } }, 'Opus-only WebM arrives as AAC');
  t.equal(heard.video, undefined, 'and without video');
  checkTail(t, heard, 8, { audio: true });
  t.match(seen, { video: { codec: 'h264', width: 320, height: 180 } }, 'H.264-only FLV arrives as it is');
  t.equal(seen.audio, undefined, 'and without audio');
  checkTail(t, seen, 8, { video: true });
});

/**
 * The stream read back from the RTMP server ends where the published sample ends: nothing of
 * its tail was held back or lost when the publisher stopped (within a frame, 0.1 s).
 */
function checkTail(t: Test, report: ReadBack, seconds: number, tracks: { video?: boolean; audio?: boolean }): void {
  if (tracks.video === true) t.ok((report.videoEnd ?? 0) >= seconds - 0.1, `the video reaches the end of the ${seconds} s sample (read up to ${report.videoEnd} s)`);
  if (tracks.audio === true) t.ok((report.audioEnd ?? 0) >= seconds - 0.1, `the audio reaches the end of the ${seconds} s sample (read up to ${report.audioEnd} s)`);
}

checkNoChildrenAtEnd(t);
