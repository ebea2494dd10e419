// Worker threads with real media: the main thread's recording of a stream published on a
// worker holds every byte; HLS answered by any worker is reported in the main thread.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { cut, makeSample, randomChunkSizes, scratchDir } from '../media/helpers.js';
import { poll } from '../bridge/helpers.js';
import { startThreaded } from './helpers.js';
import type { HlsAnswer } from '../../src/bridge/hls.js';

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

t.test('HLS answers of every worker are published on the main thread\'s diagnostics channel', async (t) => {
  const { onThread } = await startThreaded(t, 2, { bridgeHls: 'YES', hlsDir: scratchDir(t) });
  const answers: HlsAnswer[] = [];
  const listener = (message: unknown): void => void answers.push(message as HlsAnswer);
  subscribe('ws-stream-server:hls', listener);
  t.teardown(() => unsubscribe('ws-stream-server:hls', listener));
  for (const thread of [1, 2]) {
    const response = await fetch(onThread(thread, `/hls/ch${thread}/index.m3u8`).replace('ws:', 'http:'));
    t.equal(response.status, 404, `thread ${thread}: no such stream`);
    const answer = await poll(`thread ${thread}'s answer`, () => answers.find((each) => each.path === `/hls/ch${thread}/index.m3u8`));
    t.same(answer, { method: 'GET', path: `/hls/ch${thread}/index.m3u8`, status: 404 }, `thread ${thread}: its answer, as it gave it`);
  }
});
