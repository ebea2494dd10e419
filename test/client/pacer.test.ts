import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createTimestampReader, paceByTimestamps } from '../../src/client/pacer.js';
import type { PacedContainer, TimePoint } from '../../src/client/pacer.js';
import { ffmpeg, flvArgs } from './helpers.js';

const run = promisify(execFile);
const dir = t.testdir();
const files: Record<string, { container: PacedContainer; seconds: number }> = {
  'test.flv': { container: 'flv', seconds: 4 },
  'test.ts': { container: 'mpegts', seconds: 4 },
  'test.webm': { container: 'webm', seconds: 2 },
  // Recorded by Chrome's MediaRecorder: unknown-size Segment and Clusters.
  '../fixtures/mediarecorder-vp8-opus.webm': { container: 'webm', seconds: 6 },
};
const path = (name: string): string => (name.startsWith('../') ? new URL(name, import.meta.url).pathname : join(dir, name));

t.before(async () => {
  await run(ffmpeg(), flvArgs(4, path('test.flv')));
  await run(ffmpeg(), ['-v', 'error', '-nostdin', '-i', path('test.flv'), '-c', 'copy', '-f', 'mpegts', path('test.ts')]);
  await run(ffmpeg(), [
    '-v', 'error', '-nostdin', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine',
    '-t', '2', '-c:v', 'libvpx', '-deadline', 'realtime', '-c:a', 'libopus', '-f', 'webm', path('test.webm'),
  ]);
});

/** Every unit's absolute offset and time, reading `data` in pieces of `size` bytes. */
function readAll(container: PacedContainer, data: Buffer, size: number): Array<{ at: number; timeMs: number }> {
  const reader = createTimestampReader(container);
  const units: Array<{ at: number; timeMs: number }> = [];
  for (let at = 0; at < data.length; at += size) {
    for (const point of reader.push(data.subarray(at, at + size)) as TimePoint[]) units.push({ at: at + point.offset, timeMs: point.timeMs });
  }
  return units;
}

for (const [name, { container, seconds }] of Object.entries(files)) {
  t.test(`${container} timestamps of ${name.replace(/.*\//, '')}`, async (t) => {
    const data = await readFile(path(name));
    const whole = readAll(container, data, data.length);
    t.ok(whole.length > seconds * 10, `a time every few frames at least (${whole.length})`);
    const first = whole[0]!.timeMs;
    const span = Math.max(...whole.map((unit) => unit.timeMs)) - first;
    t.ok(span > (seconds - 0.5) * 1000 && span <= seconds * 1000 + 50, `the times span the duration (${span} ms for ${seconds} s)`);
    t.ok(whole.every((unit, i) => i === 0 || unit.at >= whole[i - 1]!.at), 'units in stream order');
    t.ok(whole.every((unit) => unit.at >= 0 && unit.at < data.length && unit.timeMs - first >= -1000), 'offsets inside the stream, times sane');
    for (const size of [1, 7, 188, 4096]) t.same(readAll(container, data, size), whole, `the same when fed ${size} bytes at a time`);
  });
}

t.test('paceByTimestamps: no unit goes out before its time, everything goes out, and it takes the duration', async (t) => {
  const data = await readFile(path('test.flv'));
  const units = readAll('flv', data, data.length);
  let clock = 0;
  const sleeps: number[] = [];
  async function* source(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < data.length; at += 65536) yield data.subarray(at, at + 65536);
  }
  const sent: Array<{ end: number; time: number }> = [];
  let end = 0;
  const pieces: Uint8Array[] = [];
  const paced = paceByTimestamps(source(), {
    now: () => clock,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
  });
  for await (const piece of paced) {
    end += piece.byteLength;
    pieces.push(piece);
    sent.push({ end, time: clock });
  }
  t.same(Buffer.concat(pieces), data, 'all bytes, in order');
  const first = units[0]!.timeMs;
  const early = units.filter((unit) => sent.some((piece) => piece.end > unit.at && piece.time < unit.timeMs - first));
  t.same(early, [], 'no byte of a unit before its time');
  t.ok(clock >= 3900 && clock <= 4050, `paced over the stream's duration (${clock} ms)`);
  t.ok(sleeps.length > 50, `in small steps (${sleeps.length})`);
});

t.test('paceByTimestamps refuses what it cannot pace', async (t) => {
  async function* bytes(): AsyncGenerator<Uint8Array> {
    yield new TextEncoder().encode('not a media container, just text that goes on for a while\n'.repeat(20));
  }
  await t.rejects(async () => {
    for await (const piece of paceByTimestamps(bytes())) void piece;
  }, /--realtime paces FLV, MPEG-TS and WebM/);
});
