import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { KeysFileAuthorizer, channelKey } from '../src/coordinator/index.js';
import { Logger } from '../src/log/logger.js';
import { TestClient } from './helpers/client.js';
import { freePort } from './helpers/ports.js';
import { startTestServer, workersEnv } from './helpers/server.js';

const bin = fileURLToPath(new URL('../bin/ws-stream-server.js', import.meta.url));

t.test('channelKey is the documented formula: hex HMAC-SHA256 of the channel name keyed with the secret', async (t) => {
  const expected = createHmac('sha256', 's3cret').update('my-channel').digest('hex');
  t.equal(channelKey('s3cret', 'my-channel'), expected);
  t.match(expected, /^[0-9a-f]{64}$/);
});

t.test('STREAM_KEY_SECRET: derived keys are accepted, anything else refused', async (t) => {
  const { url } = await startTestServer(t, { streamKeySecret: 'sekrit' });
  const key = channelKey('sekrit', 'show');
  const refused = await TestClient.rejection(url('/show/wrong-key/publish'));
  t.same([refused.status, refused.body], [403, 'Invalid Key.']);
  const otherChannel = await TestClient.rejection(url(`/other/${key}/publish`));
  t.equal(otherChannel.status, 403, 'a key is only valid for its own channel');

  const early = await TestClient.connect(url('/show/guess/receive'));
  t.same(await early.closed, { code: 1008, reason: 'Invalid streaming key' }, 'receivers with a wrong key are refused at once');
  t.same(early.textMessages, ['ERROR: Invalid streaming key']);

  const viewer = await TestClient.connect(url(`/show/${key}/receive`));
  const publisher = await TestClient.connect(url(`/show/${key}/publish`));
  await publisher.send(Buffer.from('ok'));
  t.same((await viewer.binary(1)).map(String), ['ok']);
  await publisher.close();
});

t.test('STREAM_KEYS_FILE: keys from JSON, reloaded on rename, in-place write and symlink switch; broken versions keep the old keys', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wss-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'keys.json');
  await writeFile(file, JSON.stringify({ a: 'key-a1' }));
  const server = await startTestServer(t, { streamKeysFile: file });
  const { url } = server;
  const keys = server.authorizer as KeysFileAuthorizer;
  const canPublish = async (channel: string, key: string): Promise<boolean> => {
    try {
      const client = await TestClient.connect(url(`/${channel}/${key}/publish`));
      await client.close();
      return true;
    } catch {
      return false;
    }
  };
  t.ok(await canPublish('a', 'key-a1'));
  t.notOk(await canPublish('a', 'nope'));
  t.notOk(await canPublish('b', 'key-b'), 'unknown channel');

  const reloaded = (): Promise<unknown> => once(keys.events, 'reload');
  let next = reloaded();
  await writeFile(join(dir, 'tmp.json'), JSON.stringify({ a: 'key-a2', b: 'key-b' }));
  await rename(join(dir, 'tmp.json'), file);
  await next;
  t.ok(await canPublish('a', 'key-a2'), 'rename over the file');
  t.ok(await canPublish('b', 'key-b'));
  t.notOk(await canPublish('a', 'key-a1'), 'the old key is gone');

  next = reloaded();
  await writeFile(file, '{ "a": "key-a3", ');
  await next;
  t.ok(await canPublish('a', 'key-a2'), 'a broken file keeps the previous keys');

  next = reloaded();
  await writeFile(file, JSON.stringify({ a: 'key-a4' }));
  await next;
  t.ok(await canPublish('a', 'key-a4'), 'in-place write');

  // certbot-style: the watched path becomes a symlink to a new file.
  next = reloaded();
  await writeFile(join(dir, 'v5.json'), JSON.stringify({ a: 'key-a5' }));
  await symlink(join(dir, 'v5.json'), join(dir, 'link.json'));
  await rename(join(dir, 'link.json'), file);
  await next;
  t.ok(await canPublish('a', 'key-a5'), 'symlink switch');
});

t.test('a bad STREAM_KEYS_FILE is a startup error naming the setting', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wss-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = promisify(execFile);
  for (const [content, message] of [
    [undefined, /STREAM_KEYS_FILE .*ENOENT/],
    ['[1, 2]', /STREAM_KEYS_FILE .*JSON object/],
    ['{"a": 5}', /STREAM_KEYS_FILE .*"a"/],
    ['{"a": {"publish": "k", "play": [1]}}', /STREAM_KEYS_FILE .*channel "a": "play" is not an array/],
  ] as const) {
    const file = join(dir, 'keys.json');
    await rm(file, { force: true });
    if (content !== undefined) await writeFile(file, content);
    const error = await run(process.execPath, [bin], { env: { PATH: process.env.PATH, HTTP_PORT: String(await freePort()), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off', STREAM_KEYS_FILE: file, ...workersEnv } }).then(
      () => undefined,
      (failure: { code: number; stderr: string }) => failure,
    );
    t.equal(error?.code, 2);
    t.match(error?.stderr, message);
  }
});

t.test('`ws-stream-server key <channel>` prints the derived key', async (t) => {
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [bin, 'key', 'my-channel'], { env: { PATH: process.env.PATH, STREAM_KEY_SECRET: 'abc' } });
  t.equal(stdout.trim(), createHmac('sha256', 'abc').update('my-channel').digest('hex'));
  const flag = await run(process.execPath, [bin, 'key', 'x', '--stream-key-secret', 'k'], { env: { PATH: process.env.PATH } });
  t.equal(flag.stdout.trim(), createHmac('sha256', 'k').update('x').digest('hex'));
  const missing = await run(process.execPath, [bin, 'key', 'x'], { env: { PATH: process.env.PATH } }).catch((failure: { code: number; stderr: string }) => failure);
  t.match(missing, { code: 2, stderr: /STREAM_KEY_SECRET is not set/ });
});

t.test('STREAM_KEYS_FILE object form: "publish" publishes and views, "play" keys only view; a bad reload keeps the old keys and names the field', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wss-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'keys.json');
  await writeFile(file, JSON.stringify({ show: { publish: 'pub-key', play: ['view-1', 'view-2'] }, plain: 'both-key', bare: { publish: 'bare-key' } }));
  const lines: string[] = [];
  const logger = new Logger({ requests: false, debug: false }, (line) => lines.push(line));
  const server = await startTestServer(t, { streamKeysFile: file }, { logger });
  const { url } = server;
  const keys = server.authorizer as KeysFileAuthorizer;

  for (const key of ['view-1', 'view-2']) {
    const refused = await TestClient.rejection(url(`/show/${key}/publish`));
    t.same([refused.status, refused.body], [403, 'Invalid Key.'], `play key ${key} never publishes`);
  }
  const idle = await TestClient.connect(url('/show/view-1/receive'));
  const publisher = await TestClient.connect(url('/show/pub-key/publish'));
  const late = await TestClient.connect(url('/show/view-2/receive'));
  const withPublishKey = await TestClient.connect(url('/show/pub-key/receive'));
  await publisher.send(Buffer.from('x'));
  for (const viewer of [idle, late, withPublishKey]) t.same((await viewer.binary(1)).map(String), ['x']);
  const wrong = await TestClient.connect(url('/show/both-key/receive'));
  t.same(await wrong.closed, { code: 1008, reason: 'Invalid streaming key' }, "another channel's key does not view");
  await publisher.close();
  const plain = await TestClient.connect(url('/plain/both-key/publish'));
  await plain.close();
  t.ok((await TestClient.connect(url('/bare/bare-key/publish')).then((client) => client.close())).code, '"play" may be left out');

  for (const [content, message] of [
    [{ show: { publish: 'pub-key', play: 'view-3' } }, 'channel "show": "play" is not an array of non-empty strings'],
    [{ show: { play: ['view-3'] } }, 'channel "show": "publish" is not a non-empty string'],
    [{ show: { publish: 'p', play: ['v', ''] } }, 'channel "show": "play" is not an array of non-empty strings'],
    [{ show: { publish: 'p', plays: [] } }, 'channel "show": unknown field "plays"'],
    [{ show: '' }, 'channel "show": the key is an empty string'],
  ] as const) {
    const next = once(keys.events, 'reload');
    await writeFile(file, JSON.stringify(content));
    await next;
    t.ok(lines.at(-1)?.includes(`not reloaded, keeping the previous keys: ${message}`), message);
    const viewer = await TestClient.connect(url('/show/view-2/receive'));
    const again = await TestClient.connect(url('/show/pub-key/publish'));
    await again.send(Buffer.from('y'));
    t.same((await viewer.binary(1)).map(String), ['y'], 'the previous keys stay in force');
    await again.close();
  }

  const next = once(keys.events, 'reload');
  await writeFile(file, JSON.stringify({ show: { publish: 'pub-key', play: ['view-3'] } }));
  await next;
  const publisher2 = await TestClient.connect(url('/show/pub-key/publish'));
  const removed = await TestClient.connect(url('/show/view-1/receive'));
  t.same(await removed.closed, { code: 1008, reason: 'Invalid streaming key' }, 'a removed play key no longer views');
  const added = await TestClient.connect(url('/show/view-3/receive'));
  await publisher2.send(Buffer.from('z'));
  t.same((await added.binary(1)).map(String), ['z'], 'a new play key views after the reload');
  await publisher2.close();
});
