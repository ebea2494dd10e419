import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import type { Test } from 'tap';
import { describeConfig, loadConfig } from '../src/config/index.js';
import type { SettingName } from '../src/config/index.js';
import { channelKey, checkPlayToken, mintPlayToken, parseTokenTtl } from '../src/coordinator/index.js';
import { Logger } from '../src/log/logger.js';
import { StreamServer } from '../src/server/stream-server.js';
import { StreamReceiver, probe } from '../src/client/index.js';
import { TestClient } from './helpers/client.js';
import type { Closed } from './helpers/client.js';
import { freePort } from './helpers/ports.js';
import { startTestServer, workersEnv } from './helpers/server.js';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../bin/ws-stream-server.js', import.meta.url));
const SECRET = 'play-secret';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const token = (channel: string, ttl = 3600, secret = SECRET): string => mintPlayToken(secret, channel, nowSeconds() + ttl);
const WRONG_KEY: Closed = { code: 1008, reason: 'Invalid streaming key' };

/** A server whose request log lines are kept in `lines`. */
async function startLoggedServer(t: Test, settings: Partial<Record<SettingName, string>>): Promise<{ url: (path: string) => string; lines: string[]; logged: (match: (line: string, index: number) => boolean) => Promise<boolean> }> {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const logger = new Logger({ requests: true, debug: false }, (line) => {
    lines.push(line);
    for (const wake of waiters) wake();
  });
  const { url } = await startTestServer(t, settings, { logger });
  /** True once a line matches: with worker threads a line reaches this thread after the client's close. */
  const logged = (match: (line: string, index: number) => boolean): Promise<boolean> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!lines.some(match)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(false);
      }, 5000);
      waiters.add(check);
      check();
    });
  return { url, lines, logged };
}

/** Connects a receiver that the server refuses after the upgrade; returns its close. */
async function refusedReceiver(url: string): Promise<Closed> {
  const client = await TestClient.connect(url);
  const closed = await client.closed;
  if (client.textMessages.join() !== 'ERROR: Invalid streaming key') throw new Error(`unexpected messages ${client.textMessages.join()}`);
  return closed;
}

t.test('tokens: the signed bytes, the checks and their reasons', async (t) => {
  t.equal(mintPlayToken('s', 'c', 2_000_000_000), mintPlayToken('s', 'c', 2_000_000_000), 'deterministic');
  const valid = mintPlayToken('s', 'chan', 2_000_000_000);
  t.match(valid, /^2000000000-[A-Za-z0-9_-]{26}$/);
  t.equal(valid.length, 37);
  t.same(checkPlayToken('s', 'chan', valid, 1_999_999_999), { valid: true });
  t.same(checkPlayToken('s', 'chan', valid, 2_000_000_000), { valid: false, problem: 'expired' }, 'not accepted at its expiry second');
  t.same(checkPlayToken('s', 'other', valid, 0), { valid: false, problem: 'wrong channel' });
  t.same(checkPlayToken('other-secret', 'chan', valid, 0), { valid: false, problem: 'tampered' });
  const flipped = valid.slice(0, -1) + (valid.endsWith('A') ? 'B' : 'A');
  t.same(checkPlayToken('s', 'chan', flipped, 0), { valid: false, problem: 'tampered' });
  t.same(checkPlayToken('s', 'chan', `2100000000${valid.slice(10)}`, 0), { valid: false, problem: 'tampered' }, 'a later expiry breaks the MAC');
  for (const bad of ['abc', valid.slice(0, -1), `${valid}x`, `0${valid}`, valid.replace('-', '_')]) {
    t.same(checkPlayToken('s', 'chan', bad, 0), { valid: false, problem: 'malformed' }, bad);
  }
  t.not(mintPlayToken('same', 'chan', 2_000_000_000).slice(15), channelKey('same', 'chan').slice(0, 22), 'no MAC shared with the derived publish key');
  t.same(['90s', '15m', '1h', '2d'].map(parseTokenTtl), [90, 900, 3600, 172_800]);
  for (const bad of ['', '0s', '1', '1w', '-5m', '1.5h', '3651d']) t.throws(() => parseTokenTtl(bad), /not a lifetime/, bad);
});

t.test('a play token views its channel (receive, receive-clear-cache, probe; idle or live) and never publishes', async (t) => {
  const { url, lines, logged } = await startLoggedServer(t, { streamKeySecret: 'publish-secret', playTokenSecret: SECRET });
  const key = channelKey('publish-secret', 'show');
  const play = token('show');
  // Opaque chunks, the first one long enough for the server to tell it is opaque (a probe waits until then).
  const ONE = Buffer.alloc(400, 1);
  const TWO = Buffer.alloc(10, 2);

  const waiting = await TestClient.connect(url(`/show/${play}/receive`));
  const publisher = await TestClient.connect(url(`/show/${key}/publish`));
  await publisher.send(ONE);
  t.same((await waiting.binary(1)), [ONE], 'an idle token receiver goes live with the publisher');
  const late = await TestClient.connect(url(`/show/${play}/receive`));
  t.same((await late.binary(1)), [ONE], 'a late token receiver gets the cache');
  const probing = await TestClient.connect(url(`/show/${play}/probe`));
  t.same((await probing.binary(1)), [ONE]);
  t.same(await probing.closed, { code: 1000, reason: 'Probe done' });

  // The SDK and its probe() pass the token through unchanged.
  t.same(Buffer.from(await probe(url(`/show/${play}`))), ONE, 'SDK probe with a token');
  const sdk = new StreamReceiver(url(`/show/${play}`));
  for await (const chunk of sdk) {
    t.same(Buffer.from(chunk), ONE, 'SDK receiver with a token');
    break;
  }
  sdk.close();

  const clear = await TestClient.connect(url(`/show/${play}/receive-clear-cache`));
  t.same((await clear.binary(1)), [ONE]);
  const withKey = await TestClient.connect(url(`/show/${key}/receive`));
  await publisher.send(TWO);
  t.same((await withKey.binary(1)), [TWO], "the publisher's key still views");
  t.same((await clear.binary(2)), [ONE, TWO]);

  const refused = await TestClient.rejection(url(`/other/${play}/publish`));
  t.same([refused.status, refused.body], [403, 'Invalid Key.']);
  await publisher.close();
  const takeOver = await TestClient.rejection(url(`/show/${play}/publish`));
  t.same([takeOver.status, takeOver.body], [403, 'Invalid Key.'], 'a token cannot take over its channel');
  // START, or IDLE on a worker thread that relays the channel only once a receiver asks for it.
  t.ok(await logged((line) => /RECEIVE (START|IDLE): 'show' with a play token/.test(line)));
  t.notOk(lines.some((line) => line.includes(play) || line.includes(SECRET)), 'the log never shows the token or the secret');
});

t.test('open mode: a token views whatever the publisher key, and never publishes (not even on a free channel)', async (t) => {
  const { url, logged } = await startLoggedServer(t, { playTokenSecret: SECRET });
  const play = token('free');
  const refused = await TestClient.rejection(url(`/free/${play}/publish`));
  t.same([refused.status, refused.body], [403, 'Invalid Key.']);
  t.ok(await logged((line) => line.endsWith('Error: Invalid streaming key provided (a play token cannot publish)')));
  const expired = mintPlayToken(SECRET, 'free', nowSeconds() - 10);
  t.equal((await TestClient.rejection(url(`/free/${expired}/publish`))).status, 403, 'an expired token cannot publish either');

  const publisher = await TestClient.connect(url('/free/anything/publish'));
  const viewer = await TestClient.connect(url(`/free/${play}/receive`));
  await publisher.send(Buffer.from('x'));
  t.same((await viewer.binary(1)).map(String), ['x']);
  t.same(await refusedReceiver(url('/free/nope/receive')), WRONG_KEY, 'a wrong key is still refused');
  t.ok(await logged((line) => line.endsWith("Error: Invalid streaming key provided (not the publisher's key; not a play token either: malformed play token)")));
  await publisher.close();
});

t.test('expired, wrong-channel, malformed and tampered tokens: the wrong-key answer, and the log says which', async (t) => {
  const { url, lines, logged } = await startLoggedServer(t, { streamKeySecret: 'publish-secret', playTokenSecret: SECRET });
  const good = token('show');
  const cases = [
    ['expired', mintPlayToken(SECRET, 'show', nowSeconds() - 1), 'expired play token'],
    ['wrong channel', token('elsewhere'), 'play token of another channel'],
    ['tampered', good.slice(0, -1) + (good.endsWith('A') ? 'B' : 'A'), 'play token with a bad signature'],
    ['another secret', token('show', 3600, 'not-the-secret'), 'play token with a bad signature'],
    ['malformed', `${good.slice(0, 20)}`, 'not a key of the channel; not a play token either: malformed play token'],
  ] as const;
  for (const [what, bad, reason] of cases) {
    for (const kind of ['receive', 'probe', 'receive-clear-cache']) {
      const before = lines.length;
      t.same(await refusedReceiver(url(`/show/${bad}/${kind}`)), WRONG_KEY, `${what} ${kind}`);
      const because = new RegExp(`Error: Invalid streaming key provided \\(${reason.replace(/[()]/g, '\\$&')}`);
      t.ok(await logged((line, index) => index >= before && because.test(line)), `${what}: logged as such`);
    }
  }
  t.same(await refusedReceiver(url('/show/wrongkey/receive')), WRONG_KEY, 'the same answer as a wrong key');
  for (const [, bad] of cases) t.notOk(lines.some((line) => line.includes(bad)), 'the log never shows the token');
});

t.test('a viewer is not cut off when its token expires; a new connection with it is refused', async (t) => {
  const { url } = await startLoggedServer(t, { playTokenSecret: SECRET });
  // At least 3 s of validity whatever the fraction of the current second: the viewer must connect in time on a busy machine.
  const expiresAt = nowSeconds() + 4;
  const play = mintPlayToken(SECRET, 'short', expiresAt);
  const publisher = await TestClient.connect(url('/short/pk/publish'));
  const viewer = await TestClient.connect(url(`/short/${play}/receive`));
  await publisher.send(Buffer.from('before'));
  await viewer.binary(1);
  // The token's lifetime is what is under test: wait until the server's clock passed it.
  await new Promise((resolve) => setTimeout(resolve, expiresAt * 1000 - Date.now() + 20));
  t.same(await refusedReceiver(url(`/short/${play}/receive`)), WRONG_KEY, 'the token has expired');
  await publisher.send(Buffer.from('after'));
  t.same((await viewer.binary(2)).map(String), ['before', 'after'], 'the viewer connected before still gets the stream');
  await publisher.close();
  t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' });
});

t.test('PLAY_REQUIRES_TOKEN: only tokens view, except from INTERNAL_RECEIVERS', async (t) => {
  const key = channelKey('publish-secret', 'show');
  const base = { streamKeySecret: 'publish-secret', playTokenSecret: SECRET, playRequiresToken: 'YES' };
  for (const [internalReceivers, keyViews] of [['', false], ['10.0.0.0/8, 192.0.2.7', false], ['10.0.0.0/8,127.0.0.0/8', true], ['127.0.0.1', true]] as const) {
    await t.test(`INTERNAL_RECEIVERS="${internalReceivers}"`, async (t) => {
      const { url, logged } = await startLoggedServer(t, { ...base, internalReceivers });
      const publisher = await TestClient.connect(url(`/show/${key}/publish`));
      const tokenViewer = await TestClient.connect(url(`/show/${token('show')}/receive`));
      if (keyViews) {
        const keyViewer = await TestClient.connect(url(`/show/${key}/receive`));
        await publisher.send(Buffer.from('x'));
        t.same((await keyViewer.binary(1)).map(String), ['x'], "an internal receiver views with the publisher's key");
      } else {
        t.same(await refusedReceiver(url(`/show/${key}/receive`)), WRONG_KEY, "the publisher's key no longer views");
        t.same(await refusedReceiver(url(`/show/${key}/probe`)), WRONG_KEY);
        t.ok(await logged((line) => line.includes('(PLAY_REQUIRES_TOKEN and not in INTERNAL_RECEIVERS: malformed play token)')));
        await publisher.send(Buffer.from('x'));
      }
      t.same((await tokenViewer.binary(1)).map(String), ['x'], 'a token views');
      await publisher.close();
    });
  }
});

t.test('PLAY_TOKEN_SECRET is never shown in the config summary (logs, admin API)', async (t) => {
  const summary = describeConfig(loadConfig({ flags: { playTokenSecret: 'do-not-show', playRequiresToken: 'YES', internalReceivers: '10.0.0.0/8' } }));
  t.equal(summary.PLAY_TOKEN_SECRET, '(set)');
  t.notOk(JSON.stringify(summary).includes('do-not-show'));
  t.same([summary.PLAY_REQUIRES_TOKEN, summary.INTERNAL_RECEIVERS], ['YES', '10.0.0.0/8']);
});

t.test('PLAY_REQUIRES_TOKEN=YES without PLAY_TOKEN_SECRET, or an ID_MAX_LENGTH too short for tokens: startup errors naming the setting', async (t) => {
  const config = (settings: Partial<Record<SettingName, string>>) => loadConfig({ flags: { bindAddress: '127.0.0.1', ...settings } });
  t.throws(() => new StreamServer(config({ httpPort: '1', playRequiresToken: 'YES' })), { setting: 'PLAY_REQUIRES_TOKEN', message: /needs PLAY_TOKEN_SECRET/ });
  t.throws(() => new StreamServer(config({ httpPort: '1', playTokenSecret: 's', idMaxLength: '36' })), { setting: 'ID_MAX_LENGTH', message: /shorter than a play token/ });
  const failure = await run(process.execPath, [bin], {
    env: { PATH: process.env.PATH, HTTP_PORT: String(await freePort()), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off', PLAY_REQUIRES_TOKEN: 'YES', ...workersEnv },
  }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  t.equal(failure?.code, 2);
  t.match(failure?.stderr, /PLAY_REQUIRES_TOKEN=YES needs PLAY_TOKEN_SECRET/);
});

t.test('`ws-stream-server token <channel>` (the real CLI) mints a token a server accepts', async (t) => {
  const { url } = await startLoggedServer(t, { playTokenSecret: 'cli-secret' });
  const env = { PATH: process.env.PATH, PLAY_TOKEN_SECRET: 'cli-secret' };
  const before = nowSeconds();
  const { stdout } = await run(process.execPath, [bin, 'token', 'tv', '--ttl', '15m'], { env });
  const printed = stdout.trim();
  const expiry = Number(printed.split('-')[0]);
  t.ok(expiry >= before + 900 && expiry <= nowSeconds() + 900, '--ttl 15m');
  t.same(checkPlayToken('cli-secret', 'tv', printed, nowSeconds()), { valid: true });
  const defaultTtl = (await run(process.execPath, [bin, 'token', 'tv'], { env })).stdout.trim();
  t.ok(Number(defaultTtl.split('-')[0]) - nowSeconds() > 3500, 'the default ttl is an hour');
  const flag = (await run(process.execPath, [bin, 'token', 'tv', '--play-token-secret', 'cli-secret', '--ttl', '90s'], { env: { PATH: process.env.PATH } })).stdout.trim();
  t.same(checkPlayToken('cli-secret', 'tv', flag, nowSeconds()), { valid: true }, 'the secret from the flag');

  const publisher = await TestClient.connect(url('/tv/pk/publish'));
  const viewer = await TestClient.connect(url(`/tv/${printed}/receive`));
  const webm = await readFile(new URL('fixtures/mediarecorder-vp8-opus.webm', import.meta.url));
  await publisher.send(webm);
  t.same(Buffer.concat(await viewer.binary(1)), webm);
  // The client commands pass a token through like a key.
  const probed = await run(process.execPath, [bin, 'probe', url(`/tv/${printed}`)], { env: { PATH: process.env.PATH } });
  t.match(JSON.parse(probed.stdout), { container: 'webm' }, '`ws-stream-server probe` with a token');
  await publisher.close();

  for (const [args, extraEnv, message] of [
    [['token', 'tv'], {}, /PLAY_TOKEN_SECRET is not set/],
    [['token', 'tv', '--ttl', '5x'], env, /--ttl: "5x" is not a lifetime/],
    [['token', 'tv', '--ttl', '0s'], env, /not a lifetime/],
    [['token', 'bad/channel'], env, /invalid channel "bad\/channel"/],
  ] as const) {
    const failure = await run(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, ...extraEnv } }).then(
      () => undefined,
      (error: { code: number; stderr: string; stdout: string }) => error,
    );
    t.match(failure, { code: 2, stderr: message, stdout: '' }, args.join(' '));
  }
});

t.test('docs/access.md: the worked example, the Node snippet and the shell recipe give what the server accepts', async (t) => {
  const doc = await readFile(new URL('../docs/access.md', import.meta.url), 'utf8');
  const example = /secret\s+`([^`]+)`, channel `([^`]+)`, expiry `(\d+)`/.exec(doc);
  t.ok(example, 'the worked example is there');
  const [, secret = '', channel = '', expiry = ''] = example ?? [];
  const expected = mintPlayToken(secret, channel, Number(expiry));
  t.match(doc, `token   = ${expected}\n`, 'the documented token is what the implementation mints');
  t.match(doc, `message = "play\\n${channel}\\n${expiry}"`, 'the documented message');

  const blocks = [...doc.matchAll(/```(js|sh)\n([\s\S]*?)```/g)];
  const node = blocks.find(([, language]) => language === 'js')?.[2] ?? '';
  const fromNode = await run(process.execPath, ['--input-type=module', '-e', node], { env: { PATH: process.env.PATH } });
  t.equal(fromNode.stdout.trim(), expected, 'the Node snippet');
  const shell = blocks.find(([, language, body]) => language === 'sh' && body!.includes('openssl'))?.[2] ?? '';
  const fromShell = await run('/bin/sh', ['-c', shell], { env: { PATH: process.env.PATH } });
  t.equal(fromShell.stdout.trim(), expected, 'the shell recipe (openssl, basenc)');
  t.same(checkPlayToken(secret, channel, expected, Number(expiry) - 1), { valid: true });
});
