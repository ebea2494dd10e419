// Worker threads with real media: the main thread's recording of a stream published on a
// worker holds every byte.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { cut, makeSample, randomChunkSizes, scratchDir } from '../media/helpers.js';
import { poll } from '../bridge/helpers.js';
import { startThreaded } from './helpers.js';

t.test('the recording (main thread) of a stream published on a worker holds exactly the published bytes', async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('webm-vp8', { seconds: 2, size: '320x180', videoBitrate: '400k' });
  const { app, onThread } = await startThreaded(t, 2, { recordDir: dir });
  const publisher = await TestClient.connect(onThread(2, '/rec/k/publish'));
  for (const chunk of cut(sample, randomChunkSizes(sample.length, 9, 16 * 1024))) await publisher.send(Buffer.from(chunk));
  await publisher.close();
  const channelGone = (): boolean => app.registry.get('rec') === undefined;
  await poll('the relayed stream to end on the main thread', channelGone);
  const file = await poll('the recording', () => {
    const files = readdirSync(join(dir, 'rec')).filter((name) => name.endsWith('.webm'));
    const path = files[0] === undefined ? undefined : join(dir, 'rec', files[0]);
    return path !== undefined && readFileSync(path).length === sample.length ? path : undefined;
  });
  t.ok(readFileSync(file).equals(sample), 'every byte, in order');
});
