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
import { TestClient } from './helpers/client.js';
import { freePort } from './helpers/ports.js';
import { startTestServer } from './helpers/server.js';

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
  const { url, server } = await startTestServer(t, { streamKeysFile: file });
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
  ] as const) {
    const file = join(dir, 'keys.json');
    await rm(file, { force: true });
    if (content !== undefined) await writeFile(file, content);
    const error = await run(process.execPath, [bin], { env: { PATH: process.env.PATH, HTTP_PORT: String(await freePort()), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off', STREAM_KEYS_FILE: file } }).then(
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
