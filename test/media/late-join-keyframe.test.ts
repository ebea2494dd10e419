// A late joiner that arrives while the newest keyframe is still arriving (its first bytes are
// published, the rest not yet) must still get something it can show at once: the group before
// it, whose keyframe is whole. Before the fix it got the init and a partial keyframe only, so
// nothing decoded until the publisher sent more (indefinitely, if it paused there).
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { concat, cut, decode, keyframePositions, makeSample, randomChunkSizes, scratchDir } from './helpers.js';
import type { SampleName } from './helpers.js';

/** Bytes of the keyframe published before the late joiner arrives: two TS packets (the frames are far larger). */
const KEYFRAME_HEAD = 400;

const samples: Array<{ name: SampleName; seed: number }> = [
  { name: 'flv', seed: 41 },
  { name: 'mpegts', seed: 42 },
  { name: 'fmp4', seed: 43 },
  { name: 'webm-vp8', seed: 44 },
];

for (const { name, seed } of samples) {
  t.test(`${name}: a late joiner during a keyframe gets the previous group, whole`, async (t) => {
    const dir = scratchDir(t);
    const bytes = await makeSample(name, { seconds: 4, gop: 25, videoBitrate: '800k' });
    const keyframes = await keyframePositions(bytes, dir);
    t.ok(keyframes.length >= 3, `the sample has ${keyframes.length} keyframes`);
    const third = keyframes[2]!;
    t.ok(third.complete - third.position > 4 * KEYFRAME_HEAD, 'the keyframe is much larger than what is published of it');
    const joinAt = third.position + KEYFRAME_HEAD;

    const server = await startTestServer(t);
    const witness = await TestClient.connect(server.url('/kf/k/receive'));
    const publisher = await TestClient.connect(server.url('/kf/k/publish'));
    const publish = async (from: number, to: number): Promise<void> => {
      const part = bytes.subarray(from, to);
      for (const chunk of cut(part, randomChunkSizes(part.length, seed, 32 * 1024))) await publisher.send(Buffer.from(chunk));
      await witness.until((client) => client.binaryBytes >= to, `the witness got ${to} bytes`);
    };
    await publish(0, joinAt);
    const late = await TestClient.connect(server.url('/kf/k/receive'));
    await late.binary(1);
    await publish(joinAt, bytes.length);
    await publisher.close();
    t.same(await late.closed, { code: 1000, reason: 'Publisher ended' });

    const received = concat(late.binaryMessages);
    // Live data is forwarded byte for byte: what came before it is the cache's backlog.
    const backlog = received.subarray(0, received.length - (bytes.length - joinAt));
    t.ok(backlog.length > joinAt - keyframes[1]!.position, `the backlog (${backlog.length} bytes) holds the previous group (from byte ${keyframes[1]!.position})`);
    t.ok(backlog.length < joinAt - keyframes[0]!.position, 'but not the one before it');
    const playable = await decode(backlog, dir, 'backlog.bin');
    t.ok(playable.frames.length >= 1, `the backlog alone decodes to ${playable.frames.length} video frames`);
    t.equal(playable.frames[0]?.key, true, 'starting with a keyframe');
    const whole = await decode(received, dir, 'received.bin');
    t.same(whole.errors, [], 'everything received decodes without errors');
    t.equal(whole.frames[0]?.key, true, 'everything received starts with a keyframe');
  });
}
