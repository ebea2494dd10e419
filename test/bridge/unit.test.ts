// The bridge's pure parts: settings, codec plan and command line, restart policy, child process ends.
import t from 'tap';
import { expandTemplate, ffmpegArgs, formatCommand, planCodecs, redactUrl, scaleFilter } from '../../src/bridge/args.js';
import type { EncodeSettings } from '../../src/bridge/args.js';
import { ChildWithStdin, describeExit } from '../../src/bridge/process.js';
import { RestartPolicy } from '../../src/bridge/restart-policy.js';
import { parseArgList, parseBitrate, parseRtmpTemplate } from '../../src/config/bridge-parsers.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import type { MediaInfo } from '../../src/media/types.js';

const ENCODE: EncodeSettings = { videoBitrate: '2500k', maxHeight: 0, fps: 0, extraArgs: [] };
const RTMP = { kind: 'rtmp', url: 'rtmp://127.0.0.1/live/x' } as const;
const HLS = { kind: 'hls', playlist: '/h/c/index.m3u8', segments: '/h/c/s-%d.ts', segmentSeconds: 1, listSize: 6, append: false } as const;
const webm: MediaInfo = { container: 'webm', tracks: [{ type: 'video', codec: 'VP8', width: 1280, height: 720 }, { type: 'audio', codec: 'Opus' }] };
const flv: MediaInfo = { container: 'flv', tracks: [{ type: 'video', codec: 'H.264', width: 1280, height: 720 }, { type: 'audio', codec: 'AAC' }] };

t.test('settings: clear validation errors', async (t) => {
  t.equal(parseRtmpTemplate(''), '');
  t.equal(parseRtmpTemplate(' rtmp://a.example/live/{channel}?k={streamId} '), 'rtmp://a.example/live/{channel}?k={streamId}');
  t.equal(parseRtmpTemplate('rtmps://a.example:443/app/{channel}'), 'rtmps://a.example:443/app/{channel}');
  t.throws(() => parseRtmpTemplate('http://a/{channel}'), /must start with rtmp:\/\/ or rtmps:\/\//);
  t.throws(() => parseRtmpTemplate('rtmp://a/live/{key}'), /unknown placeholder "\{key\}"/);
  t.throws(() => parseRtmpTemplate('rtmp://a/live/{channel'), /unknown placeholder "\{channel"/);
  t.throws(() => parseRtmpTemplate('live/{channel}'), /not a URL/);
  t.equal(parseBitrate('2500k'), '2500k');
  t.equal(parseBitrate('4M'), '4000k');
  t.equal(parseBitrate('800000'), '800k');
  t.throws(() => parseBitrate('fast'), /not a bitrate/);
  t.throws(() => parseBitrate('1k'), /out of range/);
  t.same(parseArgList(''), []);
  t.same(parseArgList(`-x264-params "keyint=60:scenecut=0"  -metadata title='My show' a\\ b`), ['-x264-params', 'keyint=60:scenecut=0', '-metadata', 'title=My show', 'a b']);
  t.throws(() => parseArgList('-metadata "title'), /unterminated " quote/);
  t.throws(() => parseArgList('-f mpegts'), /-f is set by the bridge itself/);

  const invalid = (flags: Record<string, string>): ConfigError => {
    try {
      loadConfig({ flags });
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error('expected a ConfigError');
  };
  t.match(invalid({ bridgeRtmpUrl: 'udp://x/{channel}' }).message, /^Invalid BRIDGE_RTMP_URL \(--bridge-rtmp-url\): must start with rtmp:\/\//);
  t.match(invalid({ bridgeMaxHeight: '719' }).message, /Invalid BRIDGE_MAX_HEIGHT .*719 is odd/);
  t.match(invalid({ hlsSegmentSeconds: '0.1' }).message, /Invalid HLS_SEGMENT_SECONDS .*out of range \(0\.500 to 60\)/);
  t.match(invalid({ hlsListSize: '0' }).message, /Invalid HLS_LIST_SIZE/);
  t.match(invalid({ bridgeHls: 'maybe' }).message, /Invalid BRIDGE_HLS .*not YES or NO/);
  t.match(invalid({ bridgeMaxRestarts: '-1' }).message, /Invalid BRIDGE_MAX_RESTARTS/);
  t.match(invalid({ bridgeExtraArgs: '-i other.mp4' }).message, /Invalid BRIDGE_EXTRA_ARGS .*-i is set by the bridge itself/);
  const config = loadConfig({ flags: { bridgeRtmpUrl: 'rtmp://h/live/{channel}', bridgeExtraArgs: '-g 50' } });
  t.same(config.bridgeExtraArgs, ['-g', '50']);
  t.same(
    [config.bridgeHls, config.hlsSegmentSeconds, config.hlsListSize, config.hlsKeepAfterEnd, config.bridgeVideoBitrate, config.bridgeMaxHeight, config.bridgeMaxRestarts, config.recordDir, config.recordMaxSizeMb],
    [false, 2, 6, false, '2500k', 0, 5, '', 0],
    'defaults as documented',
  );
});

t.test('codec plan: copy what FLV/MPEG-TS take as it is, transcode the rest', async (t) => {
  t.same(planCodecs(webm, ENCODE), { video: 'transcode', audio: 'transcode' }, 'VP8/Opus');
  t.same(planCodecs(flv, ENCODE), { video: 'copy', audio: 'copy' }, 'H.264/AAC');
  t.same(planCodecs(flv, { ...ENCODE, maxHeight: 480 }), { video: 'transcode', audio: 'copy' }, 'too tall for BRIDGE_MAX_HEIGHT');
  t.same(planCodecs(flv, { ...ENCODE, maxHeight: 720 }), { video: 'copy', audio: 'copy' }, 'never scaled up');
  t.same(planCodecs(flv, { ...ENCODE, fps: 30 }), { video: 'transcode', audio: 'copy' }, 'BRIDGE_FPS');
  t.same(planCodecs({ container: 'webm', tracks: [{ type: 'audio', codec: 'Opus' }] }, ENCODE), { video: 'none', audio: 'transcode' }, 'audio only');
  t.same(planCodecs({ container: 'flv', tracks: [{ type: 'video', codec: 'H.264', width: 2, height: 2 }] }, ENCODE), { video: 'copy', audio: 'none' }, 'video only');
  t.same(planCodecs({ container: 'mpegts', tracks: [{ type: 'video', codec: 'HEVC' }, { type: 'audio', codec: 'MP3' }] }, ENCODE), { video: 'transcode', audio: 'transcode' });
  t.same(planCodecs({ container: 'opaque', tracks: [] }, ENCODE), { video: 'transcode', audio: 'transcode' }, 'unknown tracks: transcode whatever is there');
});

t.test('command lines', async (t) => {
  const transcode = ffmpegArgs({ video: 'transcode', audio: 'transcode' }, { ...ENCODE, maxHeight: 480, fps: 30, extraArgs: ['-g', '60'] }, RTMP);
  t.same(transcode.slice(0, 7), ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+warning', '-i', 'pipe:0']);
  t.match(transcode.join(' '), '-c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -b:v 2500k -maxrate 2500k -bufsize 5000k -force_key_frames expr:gte(t,n_forced*2)');
  t.match(transcode.join(' '), `-vf ${scaleFilter(480)} -r 30 -c:a aac -b:a 128k -g 60 -f flv -flvflags no_duration_filesize rtmp://127.0.0.1/live/x`);
  t.equal(scaleFilter(480), "scale=-2:'min(480,trunc(ih/2)*2)'");
  const copy = ffmpegArgs({ video: 'copy', audio: 'none' }, ENCODE, HLS);
  t.same(copy.slice(7), [
    '-map', '0:v:0?', '-c:v', 'copy', '-f', 'hls', '-hls_time', '1', '-hls_list_size', '6',
    '-hls_flags', 'delete_segments', '-hls_segment_filename', '/h/c/s-%d.ts', '/h/c/index.m3u8',
  ]);
  t.match(ffmpegArgs({ video: 'copy', audio: 'none' }, ENCODE, { ...HLS, append: true }).join(' '), '-hls_flags delete_segments+append_list ', 'a restarted ffmpeg continues the playlist');
  t.match(ffmpegArgs({ video: 'transcode', audio: 'copy' }, ENCODE, HLS).join(' '), '-force_key_frames expr:gte(t,n_forced*1)', 'HLS keyframes on the segment clock');
  t.equal(formatCommand('/bin/ffmpeg', ['-vf', "scale=-2:'min(480,ih)'", '-i', 'pipe:0']), `/bin/ffmpeg -vf 'scale=-2:'\\''min(480,ih)'\\''' -i pipe:0`);
  t.equal(expandTemplate('rtmp://h/live/{channel}?id={streamId}', { channel: 'show', streamId: 'a b&c' }), 'rtmp://h/live/show?id=a%20b%26c');
  t.equal(redactUrl('rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl'), 'rtmp://a.rtmp.youtube.com/live2/…');
  t.equal(redactUrl('rtmp://user:pass@host:1935/app'), 'rtmp://host:1935/app');
  t.equal(redactUrl('rtmp://host/app?key=secret'), 'rtmp://host/app/…');
});

t.test('restart policy: 1 s, 2 s, 4 s … 30 s, at most BRIDGE_MAX_RESTARTS a minute', async (t) => {
  let now = 0;
  const policy = new RestartPolicy(100, undefined, () => now);
  const delays = [];
  for (let i = 0; i < 8; i++) delays.push(policy.next(100));
  t.same(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  now += 120_000;
  t.equal(policy.next(120_000), 1000, 'a run of a minute or more was healthy: back to 1 s');

  const limited = new RestartPolicy(3, undefined, () => now);
  t.same([limited.next(0), limited.next(0), limited.next(0), limited.next(0)], [1000, 2000, 4000, undefined], 'the 4th failure within a minute gives up');
  now += 61_000;
  t.equal(limited.recentRestarts, 0);
  t.equal(new RestartPolicy(0).next(0), undefined, 'BRIDGE_MAX_RESTARTS=0 never restarts');
});

t.test('a child that ignores stdin EOF and SIGTERM is killed, in bounded time', async (t) => {
  const script = "process.on('SIGTERM', () => console.error('ignoring SIGTERM')); process.stdin.pause(); setInterval(() => {}, 1000); console.error('[error] up')";
  const lines: string[] = [];
  const child = new ChildWithStdin(process.execPath, ['-e', script], (line) => lines.push(line));
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (lines.length > 0) {
        clearInterval(check);
        resolve();
      }
    }, 10);
  });
  child.write(Buffer.from('data'));
  const started = Date.now();
  const exit = await child.stop({ endMs: 200, termMs: 300 });
  const took = Date.now() - started;
  t.same(exit, { code: null, signal: 'SIGKILL' });
  t.equal(describeExit(exit), 'killed by SIGKILL');
  t.ok(took >= 500 && took < 3000, `stdin closed, SIGTERM, then SIGKILL (${took} ms)`);
  t.same(lines.slice(0, 2), ['[error] up', 'ignoring SIGTERM'], 'stderr is read line by line');
  t.notOk(child.running);

  const missing = new ChildWithStdin('/nonexistent/ffmpeg', []);
  const failed = await missing.exited;
  t.match(describeExit(failed), /could not start: spawn \/nonexistent\/ffmpeg ENOENT/);
  missing.write(Buffer.from('ignored'));
  t.equal(missing.writableLength, 0);
});
