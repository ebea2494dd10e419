// Worker threads (WORKERS > 1): a channel's publisher and its receivers on different threads,
// chosen through the test hooks' per-worker loopback ports (never the kernel's hashing). Each
// behaviour of a single-thread server must hold for a receiver on any thread.
import { once } from 'node:events';
import t from 'tap';
import { mergeStates } from '../../src/cluster/index.js';
import { ControlClient } from '../../src/coordinator/index.js';
import { TestClient, patternBytes } from '../helpers/client.js';
import { TestCoordinator } from '../helpers/coordinator.js';
import { startThreaded } from './helpers.js';

t.test('STREAM-KILL from the coordinator reaches the publisher on its thread; PUBLISH-END follows', async (t) => {
  const coordinator = await TestCoordinator.start();
  t.teardown(() => coordinator.stop());
  coordinator.policy = () => ({ accept: 'stream-9' });
  const { app, onThread } = await startThreaded(t, 3, { controlBaseUrl: coordinator.baseUrl, controlSecret: 'secret', controlReconnectMinSeconds: '0.02' });
  const control = app.authorizer as ControlClient;
  if (control.state !== 'connected') await once(control, 'connected');
  t.equal(coordinator.connections.length, 1, 'one control connection for every thread');
  const receiver = await TestClient.connect(onThread(3, '/news/k/receive'));
  const publisher = await TestClient.connect(onThread(2, '/news/k/publish'));
  const request = await coordinator.message('PUBLISH-REQUEST');
  t.equal(request.args['stream-channel'], 'news');
  // The stream flows to the other thread first: the kill ends a stream being relayed there.
  await publisher.send(patternBytes(100, 1));
  await receiver.binary(1);
  coordinator.send('STREAM-KILL\nStream-Channel: news\nStream-Id: stream-9');
  t.same(await publisher.closed, { code: 1008, reason: 'Stream killed' }, 'the publisher is closed');
  t.same(await receiver.closed, { code: 1000, reason: 'Publisher ended' }, 'its receiver on another thread sees the end');
  const end = await coordinator.message('PUBLISH-END');
  t.equal(end.args['stream-id'], 'stream-9', 'PUBLISH-END names the stream');
});

t.test('a worker that dies: its clients are closed, its channels end (PUBLISH-END), a new worker starts, the others go on', async (t) => {
  const coordinator = await TestCoordinator.start();
  t.teardown(() => coordinator.stop());
  let next = 0;
  coordinator.policy = () => ({ accept: `s${++next}` });
  const { app, onThread } = await startThreaded(t, 3, { controlBaseUrl: coordinator.baseUrl, controlSecret: 'secret', controlReconnectMinSeconds: '0.02' });
  const control = app.authorizer as ControlClient;
  if (control.state !== 'connected') await once(control, 'connected');
  // Channel "doomed" is published on thread 2, which will die; "fine" on thread 1.
  const doomedPublisher = await TestClient.connect(onThread(2, '/doomed/k/publish'));
  const doomedViewer = await TestClient.connect(onThread(3, '/doomed/k/receive'));
  const finePublisher = await TestClient.connect(onThread(1, '/fine/k/publish'));
  const fineViewerOnDying = await TestClient.connect(onThread(2, '/fine/k/receive'));
  const fineViewer = await TestClient.connect(onThread(3, '/fine/k/receive'));
  await finePublisher.send(patternBytes(1000, 1));
  await fineViewer.until((client) => client.binaryBytes >= 1000, 'streaming before the crash');

  const restarted = once(app.cluster!, 'workerReady');
  await app.cluster!.crashWorker(2);
  t.same(await doomedPublisher.closed, { code: 1001, reason: 'Server shutting down' }, 'the dead thread\'s publisher is disconnected, going away: it may publish again');
  t.same(await fineViewerOnDying.closed, { code: 1001, reason: 'Server shutting down' }, 'so is its receiver of a channel published elsewhere: going away, it may reconnect');
  t.same(await doomedViewer.closed, { code: 1000, reason: 'Publisher ended' }, 'the channel published on it ends cleanly for viewers elsewhere');
  const end = await coordinator.message('PUBLISH-END');
  t.equal(end.args['stream-channel'], 'doomed', 'the coordinator is told it ended');

  await finePublisher.send(patternBytes(1000, 2));
  await fineViewer.until((client) => client.binaryBytes >= 2000, 'the other threads keep streaming');
  t.same(Buffer.concat(fineViewer.binaryMessages), Buffer.concat([patternBytes(1000, 1), patternBytes(1000, 2)]), 'without a gap');
  t.same(await restarted, [2], 'a new worker 2 starts');
  t.equal(app.cluster!.workerRestarts, 1, 'counted');
  const back = await TestClient.connect(`ws://127.0.0.1:${app.cluster!.testPorts().get(2)!}/fine/k/receive`);
  await finePublisher.send(patternBytes(500, 3));
  await back.until((client) => client.binaryBytes >= 500, 'the new worker serves receivers');
});

t.test('a publisher that leaves while its authorization is pending frees the channel at once, for every thread', async (t) => {
  const coordinator = await TestCoordinator.start();
  t.teardown(() => coordinator.stop());
  coordinator.policy = () => 'ignore';
  const { app, onThread } = await startThreaded(t, 3, { controlBaseUrl: coordinator.baseUrl, controlSecret: 'secret', controlReconnectMinSeconds: '0.02' });
  const { default: WebSocket } = await import('ws');
  const leaving = new WebSocket(onThread(1, '/gone/k/publish'));
  leaving.on('error', () => {});
  // Not events.once: it rejects on the 'error' the terminate below emits.
  const left = new Promise((resolve) => leaving.once('close', resolve));
  const pending = await coordinator.message('PUBLISH-REQUEST');
  leaving.terminate();
  await left;
  // Thread 1 let go of the channel. Its word to the main thread went first, on the same port.
  for (;;) {
    const states = await app.cluster!.state();
    if (!states.some((state) => state.thread === 1 && state.channels.some((channel) => channel.name === 'gone'))) break;
  }
  coordinator.policy = () => ({ accept: 'fresh' });
  const publisher = await TestClient.connect(onThread(2, '/gone/k/publish'));
  t.pass('another thread\'s publisher gets the channel while the first request is still unanswered, as with one thread');
  coordinator.send(`PUBLISH-ACCEPT\nRequest-ID: ${pending.args['request-id']}\nStream-Channel: gone\nStream-ID: late`);
  const end = await coordinator.message('PUBLISH-END');
  t.equal(end.args['stream-id'], 'late', 'the late acceptance is of a publish that will not start: it ended');
  const viewer = await TestClient.connect(onThread(3, '/gone/k/receive'));
  await publisher.send(patternBytes(800, 5));
  t.same(await viewer.binary(1), [patternBytes(800, 5)], 'the new publisher streams to other threads');
  t.same(mergeStates(await app.cluster!.state()).channels.get('gone')?.publisher?.streamId, 'fresh', 'with its own stream id');
});
