import { spawn } from 'node:child_process';
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { startTestServer } from '../helpers/server.js';
import { cli, ensureBuilt, ffmpeg, flvArgs } from './helpers.js';

t.before(ensureBuilt);

t.test('a refused publish exits 3 and prints the server\'s reason', async (t) => {
  const { url } = await startTestServer(t);
  const holder = await TestClient.connect(url('/busy/k/publish'));
  const encoder = spawn(ffmpeg(), flvArgs(1, '-'), { stdio: ['ignore', 'pipe', 'ignore'] });
  const publisher = cli(['publish', url('/busy/k/publish')], { stdin: encoder.stdout });
  t.equal(await publisher.exit, 3);
  t.match(publisher.stderr(), /refused \(ALREADY_PUBLISHING\): Already publishing\. \(HTTP 403\)/);
  encoder.kill();
  await holder.close();
});

t.test('a receiver outside PLAY_WHITELIST and a wrong key both exit 3 naming the cause', async (t) => {
  const { url } = await startTestServer(t, { playWhitelist: '10.9.8.7' });
  const receiver = cli(['receive', url('/c/k/receive')]);
  t.equal(await receiver.exit, 3);
  t.match(receiver.stderr(), 'Cannot play: Not whitelisted. (HTTP 403)');

  const open = await startTestServer(t);
  const holder = await TestClient.connect(open.url('/c/right/publish'));
  const intruder = cli(['receive', open.url('/c/wrong/receive')]);
  t.equal(await intruder.exit, 3);
  t.match(intruder.stderr(), 'refused (INVALID_STREAMING_KEY): Invalid streaming key');
  await holder.close();
});

t.test('usage errors exit 2, an unreachable server exits 4', async (t) => {
  const noArgs = cli(['publish']);
  t.equal(await noArgs.exit, 2);
  t.match(noArgs.stderr(), "missing required argument 'url'");

  const wrongKind = cli(['publish', 'ws://127.0.0.1:1/c/k/receive']);
  t.equal(await wrongKind.exit, 2);
  t.match(wrongKind.stderr(), 'expected a publish URL');

  const badChannel = cli(['receive', 'ws://127.0.0.1:1/c%20x/k']);
  t.equal(await badChannel.exit, 2);
  t.match(badChannel.stderr(), 'the channel may only have letters, digits, - and _');

  const missing = cli(['publish', 'ws://127.0.0.1:1/c/k', '/nonexistent/file.flv']);
  t.equal(await missing.exit, 2);
  t.match(missing.stderr(), 'cannot read /nonexistent/file.flv');

  const port = await freePort();
  for (const command of ['publish', 'receive']) {
    const unreachable = cli([command, `ws://127.0.0.1:${port}/c/k`]);
    t.equal(await unreachable.exit, 4, `${command} exits 4`);
    t.match(unreachable.stderr(), `ws-stream-server ${command}: connection failed (CONNECTION_FAILED): connect ECONNREFUSED 127.0.0.1:${port}`);
  }
});
