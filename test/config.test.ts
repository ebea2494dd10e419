import { readFileSync, readdirSync } from 'node:fs';
import t from 'tap';
import { ConfigError, flagOf, loadConfig, settingNames, settings } from '../src/config/index.js';
import { buildProgram } from '../src/cli.js';

t.test('defaults match the documented Go-compatible values', async (t) => {
  const config = loadConfig();
  t.equal(config.httpPort, 8080);
  t.equal(config.bindAddress, '');
  t.equal(config.logRequests, true);
  t.equal(config.logDebug, false);
  t.equal(config.idMaxLength, 128);
  t.equal(config.maxIpConcurrentConnections, 4);
  t.equal(config.gopCacheSizeMb, 256);
  t.equal(config.maxMessageSizeMb, 64);
  t.equal(config.maxReceiverBufferMb, 16);
  t.equal(config.heartbeatIntervalSeconds, 20);
  t.equal(config.idleTimeoutSeconds, 60);
  t.ok(config.playWhitelist.isEmpty);
  t.equal(config.disableTestClient, false);
});

t.test('flag beats env beats .env beats default', async (t) => {
  t.equal(loadConfig({ dotenv: { HTTP_PORT: '1' } }).httpPort, 1);
  t.equal(loadConfig({ env: { HTTP_PORT: '2' }, dotenv: { HTTP_PORT: '1' } }).httpPort, 2);
  t.equal(loadConfig({ flags: { httpPort: '3' }, env: { HTTP_PORT: '2' }, dotenv: { HTTP_PORT: '1' } }).httpPort, 3);
  t.equal(loadConfig({ env: { HTTP_PORT: '' } }).httpPort, 8080, 'an empty variable means unset');
});

t.test('booleans accept YES/NO in any case', async (t) => {
  t.equal(loadConfig({ env: { LOG_DEBUG: 'yes' } }).logDebug, true);
  t.equal(loadConfig({ env: { LOG_REQUESTS: 'NO' } }).logRequests, false);
  t.equal(loadConfig({ env: { DISABLE_TEST_CLIENT: 'true' } }).disableTestClient, true);
});

t.test('invalid values throw a ConfigError naming the variable and the flag', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ HTTP_PORT: '80a' }, /^Invalid HTTP_PORT \(--http-port\): "80a" is not a number/],
    [{ HTTP_PORT: '0x50' }, /HTTP_PORT/],
    [{ HTTP_PORT: '1.5' }, /not a whole number/],
    [{ ID_MAX_LENGTH: '0' }, /ID_MAX_LENGTH .*out of range/],
    [{ MAX_IP_CONCURRENT_CONNECTIONS: '-1' }, /MAX_IP_CONCURRENT_CONNECTIONS/],
    [{ GOP_CACHE_SIZE_MB: 'lots' }, /GOP_CACHE_SIZE_MB/],
    [{ MAX_MESSAGE_SIZE_MB: '0' }, /MAX_MESSAGE_SIZE_MB .*out of range/],
    [{ MAX_MESSAGE_SIZE_MB: '513' }, /MAX_MESSAGE_SIZE_MB .*out of range/],
    [{ MAX_RECEIVER_BUFFER_MB: '4096' }, /MAX_RECEIVER_BUFFER_MB .*out of range/],
    [{ CONTROL_BASE_URL: 'http://127.0.0.1/' }, /CONTROL_BASE_URL .*ws:\/\/ or wss:\/\//],
    [{ CONTROL_BASE_URL: 'ws://127.0.0.1/', STREAM_KEY_SECRET: 's' }, /CONTROL_BASE_URL and STREAM_KEY_SECRET are both set/],
    [{ CONCURRENT_LIMIT_WHITELIST: '127.0.0.1,nope' }, /CONCURRENT_LIMIT_WHITELIST .*"nope"/],
    [{ PLAY_WHITELIST: '::1/129' }, /PLAY_WHITELIST/],
    [{ EXTERNAL_PORT: '0' }, /EXTERNAL_PORT/],
    [{ EXTERNAL_SSL: 'si' }, /EXTERNAL_SSL/],
    [{ HEARTBEAT_INTERVAL_SECONDS: '0' }, /HEARTBEAT_INTERVAL_SECONDS/],
  ];
  for (const [env, message] of cases) {
    const error = t.throws(() => loadConfig({ env }), JSON.stringify(env)) as unknown;
    t.ok(error instanceof ConfigError);
    t.match((error as Error).message, message, JSON.stringify(env));
  }
});

t.test('every setting has a CLI flag derived from its env var, and commander keys match', async (t) => {
  const serve = buildProgram().commands.find((command) => command.name() === 'serve')!;
  for (const name of settingNames) {
    const option = serve.options.find((candidate) => candidate.long === flagOf(settings[name]));
    t.ok(option, `${settings[name].env} has ${flagOf(settings[name])}`);
    t.equal(option?.attributeName(), name);
  }
});

t.test('docs/configuration.md lists every setting with its flag and default', async (t) => {
  const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  for (const name of settingNames) {
    const { env, default: fallback } = settings[name];
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${env}\``));
    t.ok(row, `${env} is documented`);
    t.match(row ?? '', flagOf(settings[name]));
    t.match(row ?? '', fallback === '' ? '(empty)' : `\`${fallback}\``);
  }
});

t.test('src/config is the lowest layer: it imports only itself, Node and packages', async (t) => {
  const directory = new URL('../src/config/', import.meta.url);
  const files = readdirSync(directory).filter((file) => file.endsWith('.ts'));
  t.ok(files.includes('bridge-parsers.ts'), 'the bridge settings parsers live in config');
  for (const file of files) {
    const source = readFileSync(new URL(file, directory), 'utf8');
    const relative = [...source.matchAll(/from '(\.[^']*)'/g)].map((match) => match[1]!);
    t.same(relative.filter((path) => !path.startsWith('./')), [], `${file} imports nothing outside src/config`);
  }
});
