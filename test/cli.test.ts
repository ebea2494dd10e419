import t from 'tap';
import { freePort } from './helpers/ports.js';
import { cli, ensureBuilt } from './client/helpers.js';

t.before(ensureBuilt);

t.test('every usage error of every command exits 2 with a message saying what is wrong', async (t) => {
  // A valid server setup, so a case that wrongly starts serving listens on loopback only.
  const env = { HTTP_PORT: String(await freePort()), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off' };
  const cases: Array<[string[], RegExp]> = [
    [['--http-prot', '1'], /unknown option '--http-prot'\s+\(Did you mean --http-port\?\)/],
    [['serve', '--bogus'], /unknown option '--bogus'/],
    [['--http-port'], /option '--http-port <value>' argument missing/],
    [['--http-port', 'eighty'], /Invalid HTTP_PORT \(--http-port\): "eighty" is not a number/],
    [['sevre'], /unknown command 'sevre' \(commands: serve, key, (\w+, )*help\)/],
    [['help', 'sevre'], /Usage: ws-stream-server/],
    [['key'], /missing required argument 'channel'/],
    [['key', 'a', 'b'], /too many arguments for 'key'/],
    [['key', '--stream-key-secret'], /option '--stream-key-secret <secret>' argument missing/],
    [['key', 'a'], /STREAM_KEY_SECRET is not set/],
    [['publish', '--bogus', 'ws://127.0.0.1:1/c/k'], /unknown option '--bogus'/],
    [['receive'], /missing required argument 'url'/],
    [['receive', '-o'], /option '-o, --output <file>' argument missing/],
    [['probe', 'ws://127.0.0.1:1/c/k', 'extra'], /too many arguments for 'probe'/],
    [['probe', 'not a url'], /usage \(INVALID_URL\)/],
  ];
  // All at once: each is a short-lived process that only parses its command line.
  const children = cases.map(([args]) => cli(args, { env }));
  for (const [index, [args, message]] of cases.entries()) {
    const child = children[index]!;
    t.equal(await child.exit, 2, `${args.join(' ')} exits 2`);
    t.match(child.stderr(), message, args.join(' '));
  }
});

t.test('asking for help or the version is not an error', async (t) => {
  const commands = [['--help'], ['--version'], ['publish', '--help'], ['help', 'receive']];
  const children = commands.map((args) => cli(args));
  for (const [index, args] of commands.entries()) {
    const child = children[index]!;
    t.equal(await child.exit, 0, `${args.join(' ')} exits 0`);
    t.match(child.stdout().toString(), /\S/, `${args.join(' ')} prints something`);
  }
});
