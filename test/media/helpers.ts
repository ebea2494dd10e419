import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { requireFfmpeg } from '../../src/bridge/ffmpeg.js';

export const FFMPEG = requireFfmpeg().path;

/** The test media: one per container and codec set, made by ffmpeg from lavfi test sources. */
export type SampleName = 'webm-vp8' | 'webm-vp9' | 'flv' | 'mpegts' | 'fmp4';

export interface SampleOptions {
  seconds?: number;
  /** Video size, e.g. 480x270. */
  size?: string;
  videoBitrate?: string;
  /** Frames between keyframes (25 fps). */
  gop?: number;
  audioOnly?: boolean;
}

const LAVFI_AUDIO = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];

function encoderArgs(name: SampleName, options: Required<SampleOptions>): string[] {
  // Noise keeps the encoder near its bitrate, so GOPs are realistically large.
  const video = options.audioOnly ? ['-vn'] : ['-vf', 'noise=alls=12:allf=t', '-pix_fmt', 'yuv420p', '-g', String(options.gop), '-b:v', options.videoBitrate];
  switch (name) {
    case 'webm-vp8':
    case 'webm-vp9': {
      const codec = name === 'webm-vp8' ? 'libvpx' : 'libvpx-vp9';
      // Clusters start at keyframes (as MediaRecorder's do) rather than every second.
      if (options.audioOnly) return [...video, '-c:a', 'libopus', '-f', 'webm'];
      return [...video, '-c:v', codec, '-deadline', 'realtime', '-cpu-used', '8', '-c:a', 'libopus', '-cluster_time_limit', '5000', '-cluster_size_limit', '8000000', '-f', 'webm'];
    }
    case 'flv':
      return [...(options.audioOnly ? video : [...video, '-c:v', 'libx264', '-preset', 'ultrafast']), '-c:a', 'aac', '-f', 'flv'];
    case 'mpegts':
      return [...(options.audioOnly ? video : [...video, '-c:v', 'libx264', '-preset', 'ultrafast']), '-c:a', 'aac', '-f', 'mpegts'];
    case 'fmp4':
      // Without video, fragments every 0.5 s (as MediaRecorder's timeslices would cut them).
      if (options.audioOnly) return [...video, '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '500000', '-f', 'mp4'];
      return [...video, '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4'];
  }
}

/** Runs ffmpeg; resolves with its stdout and stderr (rejects on a non-zero exit). */
export function ffmpeg(args: readonly string[], input?: Uint8Array): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(FFMPEG, ['-hide_banner', '-nostdin', ...args], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (data: Buffer) => out.push(data));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (data: string) => (stderr += data));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else reject(new Error(`ffmpeg ${args.join(' ')} exited with ${code}: ${stderr.slice(-2000)}`));
    });
    if (input !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}

/** A live-like stream (written to a pipe, as an encoder publishing would) from lavfi sources. */
export async function makeSample(name: SampleName, options: SampleOptions = {}): Promise<Buffer> {
  const all: Required<SampleOptions> = { seconds: 8, size: '480x270', videoBitrate: '2000k', gop: 25, audioOnly: false, ...options };
  const inputs = all.audioOnly ? LAVFI_AUDIO : ['-f', 'lavfi', '-i', `testsrc2=size=${all.size}:rate=25`, ...LAVFI_AUDIO];
  const { stdout } = await ffmpeg(['-v', 'error', ...inputs, '-t', String(all.seconds), ...encoderArgs(name, all), 'pipe:1']);
  return stdout;
}

/** A scratch directory removed when the test ends. */
export function scratchDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'ws-media-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface DecodeReport {
  /** ffmpeg's error-level output (should be empty). */
  errors: string[];
  /** Decoded video frames, in order: keyframe flag and size. */
  frames: Array<{ key: boolean; size: string }>;
  audioStreams: number;
}

/**
 * Decodes a stream as a player would (`ffmpeg -i file -f null -`), collecting error-level lines
 * and, through showinfo, whether each decoded video frame is a keyframe.
 */
export async function decode(bytes: Uint8Array, dir: string, name = 'decode.bin'): Promise<DecodeReport> {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  const { stderr } = await ffmpeg(['-loglevel', 'level+info', '-i', path, '-vf', 'showinfo', '-f', 'null', '-']);
  const lines = stderr.split('\n');
  const errors = lines.filter((line) => /\[(error|fatal|panic)\]/.test(line));
  const frames = lines
    .filter((line) => line.includes('Parsed_showinfo') && line.includes(' iskey:'))
    .map((line) => ({ key: line.includes('iskey:1'), size: /\bs:(\d+x\d+)/.exec(line)?.[1] ?? '' }));
  const audioStreams = lines.filter((line) => /Stream #0:\d.*: Audio:/.test(line) && line.includes('[info]     Stream')).length;
  return { errors, frames, audioStreams };
}

/**
 * Where the video keyframes are, as ffmpeg's demuxer reports them (independent of our parsers):
 * the keyframe packet's position, and the next video packet's (by then the keyframe is complete).
 */
export async function keyframePositions(bytes: Uint8Array, dir: string): Promise<Array<{ position: number; complete: number }>> {
  const path = join(dir, 'positions.bin');
  writeFileSync(path, bytes);
  const { stderr } = await ffmpeg(['-loglevel', 'info', '-i', path, '-an', '-vf', 'showinfo', '-f', 'null', '-']);
  const frames = stderr
    .split('\n')
    .filter((line) => line.includes('Parsed_showinfo') && line.includes(' iskey:'))
    .map((line) => ({ key: line.includes('iskey:1'), position: Number(/\bpos:\s*(\d+)/.exec(line)?.[1] ?? NaN) }))
    .sort((a, b) => a.position - b.position);
  return frames.flatMap((frame, i) => (frame.key ? [{ position: frame.position, complete: frames[i + 1]?.position ?? Number.POSITIVE_INFINITY }] : []));
}

/** Deterministic sizes from 1 byte to 256 KiB, log-uniform (many small chunks, some large). */
export function randomChunkSizes(total: number, seed: number, max = 256 * 1024): number[] {
  let state = seed >>> 0 || 1;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const sizes: number[] = [];
  let sum = 0;
  while (sum < total) {
    const size = Math.min(Math.max(1, Math.floor(Math.exp(next() * Math.log(max + 1)))), total - sum);
    sizes.push(size);
    sum += size;
  }
  return sizes;
}

/** Cuts `bytes` into chunks of the given sizes. */
export function cut(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const size of sizes) {
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

export function concat(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

export const FIXTURES = new URL('../fixtures/', import.meta.url);

/** The MediaRecorder recording and the sizes of the chunks the browser produced. */
export function mediaRecorderFixture(): { bytes: Buffer; chunkSizes: number[] } {
  const bytes = readFileSync(new URL('mediarecorder-vp8-opus.webm', FIXTURES));
  const { chunkSizes } = JSON.parse(readFileSync(new URL('mediarecorder-vp8-opus.chunks.json', FIXTURES), 'utf8')) as { chunkSizes: number[] };
  return { bytes, chunkSizes };
}
