// The cork anchor (src/server/cork-anchor.ts): upgrades decided later run corked on a request
// the thread holds for itself, never on their own response; real uWebSockets.js, real Unix socket.
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import t from 'tap';
import type uWS from 'uWebSockets.js';
import { CorkAnchor } from '../src/server/cork-anchor.js';

/** A response whose own cork must not be used while the anchor holds (it counts its uses). */
function response(): { res: uWS.HttpResponse; corks: () => number } {
  let corks = 0;
  const res = {
    cork(task: () => void) {
      corks++;
      task();
      return res;
    },
  } as unknown as uWS.HttpResponse;
  return { res, corks: () => corks };
}

t.test('held: a task runs at once on the anchor, not on its own response; closed: on its own again', async (t) => {
  const anchor = new CorkAnchor();
  await anchor.open();
  t.same(
    readdirSync(tmpdir()).filter((name) => name.startsWith(`ws-stream-server-${process.pid}-`)),
    [],
    'the Unix socket is gone from the file system once the request is held',
  );
  const { res, corks } = response();
  let ran = false;
  anchor.cork(res, () => (ran = true));
  t.ok(ran, 'the task ran, synchronously');
  t.equal(corks(), 0, 'corked on the anchor: its own response was not corked');
  anchor.close();
  anchor.cork(res, () => {});
  t.equal(corks(), 1, 'after close(), the response itself');
});
