// The ffmpeg command line of a bridge: pure functions of what was detected about the stream
// (container, codecs, size) and the settings, so they are tested without running ffmpeg.

import type { MediaInfo, TrackInfo } from '../media/types.js';

/** How the bridge encodes, from the BRIDGE_* settings. */
export interface EncodeSettings {
  /** BRIDGE_VIDEO_BITRATE, as ffmpeg writes it (`2500k`). */
  readonly videoBitrate: string;
  /** BRIDGE_MAX_HEIGHT (0: keep the size). */
  readonly maxHeight: number;
  /** BRIDGE_FPS (0: keep the rate). */
  readonly fps: number;
  /** BRIDGE_EXTRA_ARGS, inserted before `-f`. */
  readonly extraArgs: readonly string[];
}

/** Where ffmpeg writes: an RTMP push (FLV) or an HLS folder. */
export type OutputTarget =
  | { readonly kind: 'rtmp'; readonly url: string }
  | {
      readonly kind: 'hls';
      /** The playlist path (`<dir>/index.m3u8`). */
      readonly playlist: string;
      /** The segment path pattern (`<dir>/<prefix>%d.ts`). */
      readonly segments: string;
      readonly segmentSeconds: number;
      readonly listSize: number;
      /** Continue the existing playlist (a restarted ffmpeg): ffmpeg marks the seam with a discontinuity. */
      readonly append: boolean;
    };

/** What happens to each kind of track: `none` when the stream has no such track. */
export interface CodecPlan {
  readonly video: 'copy' | 'transcode' | 'none';
  readonly audio: 'copy' | 'transcode' | 'none';
}

/** Keyframe interval of transcoded video for RTMP (what YouTube and Twitch ask for). */
const RTMP_KEYFRAME_SECONDS = 2;
const AUDIO_BITRATE = '128k';

/**
 * Copy a track when FLV and MPEG-TS (HLS) take it as it is (H.264, AAC) and nothing asks for a
 * change (a lower BRIDGE_MAX_HEIGHT, a BRIDGE_FPS); transcode anything else. When the tracks
 * are not known (an opaque stream), both kinds are transcoded if present.
 */
export function planCodecs(media: MediaInfo, settings: EncodeSettings): CodecPlan {
  const known = media.tracks.length > 0;
  if (!known) return { video: 'transcode', audio: 'transcode' };
  const video = media.tracks.find((track) => track.type === 'video');
  const audio = media.tracks.find((track) => track.type === 'audio');
  return {
    video: video === undefined ? 'none' : videoFits(video, settings) ? 'copy' : 'transcode',
    audio: audio === undefined ? 'none' : audio.codec === 'AAC' ? 'copy' : 'transcode',
  };
}

function videoFits(track: TrackInfo, settings: EncodeSettings): boolean {
  if (track.codec !== 'H.264' || settings.fps > 0) return false;
  if (settings.maxHeight === 0) return true;
  return track.height !== undefined && track.height <= settings.maxHeight;
}

/**
 * The whole command line after the binary: stdin in, the planned codecs, the output. ffmpeg
 * logs warnings and errors only, each line tagged with its level (`[warning]`, `[error]`).
 */
export function ffmpegArgs(plan: CodecPlan, settings: EncodeSettings, target: OutputTarget): string[] {
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+warning', '-i', 'pipe:0'];
  // Optional maps: a track our parser saw but ffmpeg's probe missed must not be fatal.
  if (plan.video !== 'none') args.push('-map', '0:v:0?');
  if (plan.audio !== 'none') args.push('-map', '0:a:0?');
  if (plan.video === 'copy') args.push('-c:v', 'copy');
  else if (plan.video === 'transcode') {
    const keyframeSeconds = target.kind === 'hls' ? target.segmentSeconds : RTMP_KEYFRAME_SECONDS;
    const bitrate = settings.videoBitrate;
    args.push(
      '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
      '-b:v', bitrate, '-maxrate', bitrate, '-bufsize', doubled(bitrate),
      // Keyframes on a fixed clock: HLS segments of the asked length, RTMP every 2 s.
      '-force_key_frames', `expr:gte(t,n_forced*${keyframeSeconds})`,
      '-vf', scaleFilter(settings.maxHeight),
    );
    if (settings.fps > 0) args.push('-r', String(settings.fps));
  }
  if (plan.audio === 'copy') args.push('-c:a', 'copy');
  else if (plan.audio === 'transcode') args.push('-c:a', 'aac', '-b:a', AUDIO_BITRATE);
  args.push(...settings.extraArgs);
  if (target.kind === 'rtmp') {
    args.push('-f', 'flv', '-flvflags', 'no_duration_filesize', target.url);
  } else {
    args.push(
      '-f', 'hls', '-hls_time', String(target.segmentSeconds), '-hls_list_size', String(target.listSize),
      // append_list: a restarted ffmpeg continues the playlist instead of starting over. Only
      // then: ffmpeg starts every appending playlist with a discontinuity, even an empty one.
      '-hls_flags', target.append ? 'delete_segments+append_list' : 'delete_segments', '-hls_segment_filename', target.segments, target.playlist,
    );
  }
  return args;
}

/** Scales down to `maxHeight` (aspect kept, never up); sizes are made even, as H.264 needs. */
export function scaleFilter(maxHeight: number): string {
  if (maxHeight === 0) return "scale='trunc(iw/2)*2':'trunc(ih/2)*2'";
  return `scale=-2:'min(${maxHeight},trunc(ih/2)*2)'`;
}

function doubled(bitrate: string): string {
  const match = /^(\d+)k$/.exec(bitrate);
  return match === null ? bitrate : `${Number(match[1]) * 2}k`;
}

/** Fills `{channel}` and `{streamId}` (percent-encoded) into BRIDGE_RTMP_URL. */
export function expandTemplate(template: string, values: { channel: string; streamId: string }): string {
  return template.replaceAll('{channel}', encodeURIComponent(values.channel)).replaceAll('{streamId}', encodeURIComponent(values.streamId));
}

/**
 * An RTMP URL safe for logs: scheme, host and the first path segment (the application); the
 * rest (where services put the stream key) is elided.
 */
export function redactUrl(url: string): string {
  const match = /^([a-z]+:\/\/)(?:[^@/]*@)?([^/]*)(\/[^/?]*)?/i.exec(url);
  if (match === null) return '(url)';
  const rest = url.length > match[0].length ? '/…' : '';
  return `${match[1]}${match[2]}${match[3] ?? ''}${rest}`;
}

/** A command line as one line for logs, with quotes where an argument needs them. */
export function formatCommand(binary: string, args: readonly string[]): string {
  return [binary, ...args].map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)).join(' ');
}
