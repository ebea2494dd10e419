// STREAM_KEYS_FILE with worker threads: the main thread loads and watches it; a reload reaches
// the key checks of every thread, a bad file keeps the old keys everywhere.
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { startThreaded } from './helpers.js';

t.test('play keys of the keys file, before and after a reload, on every thread', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wss-threads-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'keys.json');
  await writeFile(file, JSON.stringify({ show: { publish: 'pub', play: ['view-1'] } }));
  const { app, onThread } = await startThreaded(t, 3, { streamKeysFile: file });
  const cluster = app.cluster!;
  const publisher = await TestClient.connect(onThread(1, '/show/pub/publish'));
  await publisher.send(Buffer.from('a'));
  for (const thread of [2, 3]) {
    const viewer = await TestClient.connect(onThread(thread, '/show/view-1/receive'));
    t.same((await viewer.binary(1)).map(String), ['a'], `thread ${thread}: the play key views`);
    await viewer.close();
  }

  let reloaded = once(cluster, 'keysReloaded');
  await writeFile(file, JSON.stringify({ show: { publish: 'pub', play: ['view-2'] } }));
  await reloaded;
  for (const thread of [2, 3]) {
    const removed = await TestClient.connect(onThread(thread, '/show/view-1/receive'));
    t.same(await removed.closed, { code: 1008, reason: 'Invalid streaming key' }, `thread ${thread}: a removed play key no longer views`);
    const added = await TestClient.connect(onThread(thread, '/show/view-2/receive'));
    await publisher.send(Buffer.from(String(thread)));
    await added.until((client) => client.binaryMessages.some((message) => String(message) === String(thread)), 'the live chunk');
    t.pass(`thread ${thread}: the new play key views`);
    await added.close();
  }

  reloaded = once(cluster, 'keysReloaded');
  await writeFile(file, '{ broken');
  await reloaded;
  const still = await TestClient.connect(onThread(3, '/show/view-2/receive'));
  await publisher.send(Buffer.from('z'));
  await still.until((client) => client.binaryMessages.some((message) => String(message) === 'z'), 'the live chunk');
  t.pass('a bad file keeps the previous keys on the threads too');
});
