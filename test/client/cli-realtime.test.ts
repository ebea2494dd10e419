import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { StreamReceiver } from '../../src/client/index.js';
import { startTestServer } from '../helpers/server.js';
import { cli, ensureBuilt, makeFlv } from './helpers.js';

t.before(ensureBuilt);

// The one behaviour test of pacing by wall clock; the readers and the pacer are unit-tested
// with a fake clock in pacer.test.ts.
t.test('publish --realtime of a 10 s FLV file takes about 10 s, and sends it all, byte-exact', async (t) => {
  const { url } = await startTestServer(t);
  const file = join(t.testdir(), 'ten.flv');
  await makeFlv(file, 10);
  const receiver = new StreamReceiver(url('/rt/k/receive'));
  await new Promise<void>((resolve) => receiver.once('open', resolve));
  const received: Buffer[] = [];
  let first = 0;
  const reading = (async () => {
    for await (const chunk of receiver) {
      first ||= performance.now();
      received.push(Buffer.from(chunk));
    }
  })();

  const publisher = cli(['publish', '--realtime', url('/rt/k'), file]);
  t.equal(await publisher.exit, 0, publisher.stderr());
  await reading;
  // Measured by the receiver, from the first byte to the end: the CLI's start-up does not count.
  const seconds = (performance.now() - first) / 1000;
  t.ok(seconds >= 8.5 && seconds <= 13, `took ${seconds.toFixed(2)} s (8.5 to 13 s expected)`);
  t.same(Buffer.concat(received), await readFile(file));
  t.ok(received.length > 20, `sent in many messages as time goes (${received.length}), not in one burst`);
});
