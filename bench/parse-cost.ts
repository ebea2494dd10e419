/**
 * Scenario (g): what the keyframe-aware cache costs the server. It runs, in this process, the
 * exact per-chunk work the server does on the publisher side (`MediaCache.push`: sniffing,
 * header parsing, GOP bookkeeping) over real WebM and FLV made by ffmpeg, and the same with
 * detection off (the opaque byte FIFO). The difference, per second of stream, is the extra
 * server CPU the parsing costs, in % of one core; the target compares it with the server CPU
 * that scenario (a) measured for a 4 Mbit/s stream to 200 receivers in the same run.
 */
import { spawn } from 'node:child_process';
import { requireFfmpeg } from '../src/bridge/ffmpeg.js';
import { MediaCache } from '../src/media/media-cache.js';

export interface ParseCostCase {
  container: 'webm' | 'flv';
  targetMbps: number;
  /** Bitrate of the sample ffmpeg actually produced. */
  actualMbps: number;
  mediaSeconds: number;
  /** Extra CPU of parsing over the opaque path, in % of one core, at the sample's rate. */
  extraCorePercent: number;
  /** CPU of the whole media path and of the opaque path, % of one core at that rate. */
  mediaCorePercent: number;
  opaqueCorePercent: number;
}

const SAMPLE_SECONDS = 10;
/** MediaRecorder-like messages: a quarter second of media each. */
const CHUNK_SECONDS = 0.25;
/** Repeat until each path has used at least this much CPU, so timer resolution does not matter. */
const MIN_CPU_MS = 400;

async function makeSample(container: 'webm' | 'flv', mbps: number): Promise<Buffer> {
  const { path } = requireFfmpeg();
  const rate = `${mbps}M`;
  // Noise keeps the picture hard to compress, so the encoder reaches the asked bitrate.
  const input = ['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30,noise=alls=30:allf=t', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];
  const video =
    container === 'webm'
      ? ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', rate, '-minrate', rate, '-maxrate', rate, '-g', '60', '-c:a', 'libopus', '-f', 'webm']
      : ['-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', rate, '-maxrate', rate, '-bufsize', rate, '-g', '60', '-c:a', 'aac', '-f', 'flv'];
  const args = ['-v', 'error', ...input, '-t', String(SAMPLE_SECONDS), ...video, 'pipe:1'];
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (part: Buffer) => out.push(part));
    child.stderr.on('data', (part: Buffer) => (err += part.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg exited with ${code}: ${err.slice(-500)}`))));
  });
}

/** CPU milliseconds per pass of `chunks` through a fresh cache, detection on or off. */
function cpuPerPass(chunks: readonly Uint8Array[], detect: boolean): number {
  let passes = 0;
  const start = process.cpuUsage();
  let used = 0;
  while (used < MIN_CPU_MS * 1000) {
    const cache = new MediaCache({ capacityBytes: 256 * 1024 * 1024, gops: 1, detect });
    // The server copies each chunk once before caching it (the socket's buffer is only lent).
    for (const chunk of chunks) cache.push(Uint8Array.prototype.slice.call(chunk));
    passes++;
    const usage = process.cpuUsage(start);
    used = usage.user + usage.system;
  }
  return used / 1000 / passes;
}

export async function measureParseCost(log: (line: string) => void): Promise<ParseCostCase[]> {
  const cases: ParseCostCase[] = [];
  for (const container of ['webm', 'flv'] as const) {
    for (const targetMbps of [4, 20]) {
      log(`  encoding ${SAMPLE_SECONDS} s of ${container} at ${targetMbps} Mbit/s`);
      const sample = await makeSample(container, targetMbps);
      const actualMbps = (sample.length * 8) / SAMPLE_SECONDS / 1e6;
      const chunkBytes = Math.max(1024, Math.round((sample.length / SAMPLE_SECONDS) * CHUNK_SECONDS));
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < sample.length; at += chunkBytes) chunks.push(sample.subarray(at, at + chunkBytes));
      cpuPerPass(chunks, true); // warm up the JIT on both paths
      cpuPerPass(chunks, false);
      const media = cpuPerPass(chunks, true);
      const opaque = cpuPerPass(chunks, false);
      const percent = (ms: number): number => (ms / 1000 / SAMPLE_SECONDS) * 100;
      cases.push({
        container,
        targetMbps,
        actualMbps,
        mediaSeconds: SAMPLE_SECONDS,
        extraCorePercent: Math.max(0, percent(media - opaque)),
        mediaCorePercent: percent(media),
        opaqueCorePercent: percent(opaque),
      });
    }
  }
  return cases;
}
