// The origin decides about keys; an edge keeps one upstream per channel (see edge-tokens.test.ts).
import t from 'tap';
import { TestClient, patternBytes } from '../helpers/client.js';
import { receiverCount, relays, startServer, until } from './helpers.js';

t.test('a wrong key gets the origin\'s answer and leaves no upstream', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url('') } });

  // Before the publisher: both wait, the other key on a check (an upstream probe) of its own.
  const right = await TestClient.connect(edge.url('/keys/good/receive'));
  const early = await TestClient.connect(edge.url('/keys/bad/receive'));
  await until('the upstream and the other key\'s check', async () => receiverCount(origin, 'keys'), (count) => count === 2);
  const publisher = await TestClient.connect(origin.url('/keys/good/publish'));
  const chunk = patternBytes(5000, 7);
  await publisher.send(chunk);
  await right.binary(1);
  t.ok(Buffer.concat(right.binaryMessages).equals(chunk), 'the right key receives');
  t.same(await early.closed, { code: 1008, reason: 'Invalid streaming key' });
  t.same(early.textMessages, ['ERROR: Invalid streaming key']);

  // While live: the origin's answer.
  const late = await TestClient.connect(edge.url('/keys/bad/receive'));
  t.same(await late.closed, { code: 1008, reason: 'Invalid streaming key' });
  t.same(late.textMessages, ['ERROR: Invalid streaming key']);
  await until('the wrong key\'s upstream is gone', async () => receiverCount(origin, 'keys'), (count) => count === 1);
  t.match(await relays(edge), [{ channel: 'keys', viewers: 1, state: 'live' }], 'only the right key\'s relay is left');
  await right.close();
});

t.test('the first viewer\'s key is wrong: the upstream is reopened with a key the origin accepts', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url('') } });
  const a = await Promise.all([1, 2, 3].map(() => TestClient.connect(edge.url('/multi/a/receive'))));
  const b = await Promise.all([1, 2].map(() => TestClient.connect(edge.url('/multi/b/receive'))));
  await until('the upstream (key a) and the check of key b', async () => receiverCount(origin, 'multi'), (count) => count === 2);
  t.match(await relays(edge), [{ channel: 'multi', viewers: 5 }], 'one relay for the channel');
  // The publisher uses key b: a's viewers are refused by the origin's answer, b's receive.
  const publisher = await TestClient.connect(origin.url('/multi/b/publish'));
  const chunk = patternBytes(3000, 3);
  await publisher.send(chunk);
  for (const viewer of b) {
    await viewer.binary(1);
    t.ok(Buffer.concat(viewer.binaryMessages).equals(chunk));
  }
  for (const viewer of a) t.same(await viewer.closed, { code: 1008, reason: 'Invalid streaming key' });
  await until('a\'s upstream and b\'s check closed', async () => receiverCount(origin, 'multi'), (count) => count === 1);
  await until('one relay left, for b\'s viewers', async () => relays(edge), (list) => list.length === 1 && list[0]!.viewers === 2 && list[0]!.state === 'live');
});
