// Real media (ffmpeg) through an edge: late joiners, probes and receive-clear-cache use the
// edge's own keyframe-aware cache, fed by its upstream from the origin.
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { concat, cut, decode, makeSample, randomChunkSizes, scratchDir } from '../media/helpers.js';
import { channelInfo, startServer } from './helpers.js';

t.test('late joiner, probe and receive-clear-cache on an edge', async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('flv', { seconds: 6, gop: 25, videoBitrate: '800k' });
  const chunks = cut(sample, randomChunkSizes(sample.length, 11, 32 * 1024));
  const thirds = [0, Math.floor(chunks.length / 3), Math.floor((2 * chunks.length) / 3), chunks.length];
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url('') } });
  const witness = await TestClient.connect(origin.url('/media/k/receive'));
  const publisher = await TestClient.connect(origin.url('/media/k/publish'));
  const publishThird = async (third: number): Promise<void> => {
    for (const chunk of chunks.slice(thirds[third], thirds[third + 1])) await publisher.send(Buffer.from(chunk));
    const sent = concat(chunks.slice(0, thirds[third + 1])).length;
    await witness.until((client) => client.binaryBytes >= sent, `${sent} bytes at the origin`);
  };

  await publishThird(0);
  // Nothing was relayed yet: the edge's first viewer makes the upstream, which gets what a late
  // joiner of the origin gets; the edge's cache parses it like a publisher's stream.
  const late = await TestClient.connect(edge.url('/media/k/receive'));
  await late.binary(1);
  await publishThird(1);
  await late.until((client) => client.binaryBytes > 100_000, 'the late joiner receiving');

  const originProbe = await TestClient.connect(origin.url('/media/k/probe'));
  const edgeProbe = await TestClient.connect(edge.url('/media/k/probe'));
  for (const probe of [originProbe, edgeProbe]) t.same(await probe.closed, { code: 1000, reason: 'Probe done' });
  t.equal(edgeProbe.binaryMessages.length, 1, 'a probe through the edge gets one message');
  t.ok(edgeProbe.binaryMessages[0]!.equals(originProbe.binaryMessages[0]!), 'the same message as a probe on the origin');

  // A late joiner of the edge: the edge's cache, from a keyframe.
  const lateOnEdge = await TestClient.connect(edge.url('/media/k/receive'));
  await lateOnEdge.binary(1);
  const clearing = await TestClient.connect(edge.url('/media/k/receive-clear-cache'));
  await clearing.binary(1);
  const edgeCache = (await channelInfo(edge, 'media'))!.cacheBytes;
  const originCache = (await channelInfo(origin, 'media'))!.cacheBytes;
  t.ok(edgeCache < originCache / 4, `receive-clear-cache cleared the edge's cache (${edgeCache} bytes left), not the origin's (${originCache})`);
  const afterClear = await TestClient.connect(edge.url('/media/k/receive'));

  await publishThird(2);
  await publisher.close();
  for (const viewer of [late, lateOnEdge, clearing, afterClear]) t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' });

  const tail = sample.subarray(sample.length - 4096);
  for (const [name, viewer] of [['first viewer of the edge', late], ['late joiner of the edge', lateOnEdge], ['receive-clear-cache', clearing], ['receive after the clear', afterClear]] as const) {
    const received = concat(viewer.binaryMessages);
    t.ok(received.subarray(received.length - 4096).equals(tail), `${name}: ends with the stream's last bytes`);
    t.ok(received.length < sample.length, `${name}: did not get the whole stream`);
    const report = await decode(received, dir, `${name.replaceAll(' ', '-')}.flv`);
    t.same(report.errors, [], `${name}: decodes without errors`);
    t.equal(report.frames[0]?.key, true, `${name}: starts on a keyframe`);
  }
  t.ok(concat(afterClear.binaryMessages).length < concat(clearing.binaryMessages).length, 'after the clear, a new receiver starts at a later keyframe');
});
