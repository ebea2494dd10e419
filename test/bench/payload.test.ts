import t from 'tap';
import { HEADER_BYTES, MessageAssembler, makeTemplate, writeHeader } from '../../bench/payload.js';

function message(size: number, seq: number, runId: number, sendNs: bigint): Buffer {
  const buf = makeTemplate(size);
  writeHeader(buf, 0, seq, size, runId, sendNs);
  return buf;
}

function feed(a: MessageAssembler, msg: Buffer, cut: number[]): ReturnType<MessageAssembler['end']> {
  a.begin();
  let prev = 0;
  for (const c of [...cut, msg.length]) {
    a.data(msg, prev, c);
    prev = c;
  }
  return a.end();
}

t.test('header fields survive any slicing', async (t) => {
  const msg = message(1000, 42, 7, 123456789012345n);
  const a = new MessageAssembler(makeTemplate(1000), 7, true);
  for (const cut of [[], [1], [10, 23], [24], [5, 30, 999]]) {
    t.same(feed(a, msg, cut), { ok: true, seq: 42, sendNs: 123456789012345n, bytes: 1000 }, `cut at ${cut.join(',')}`);
  }
});

t.test('a flipped filler byte is detected, even across slices', async (t) => {
  const msg = message(1000, 1, 7, 1n);
  msg[500]! ^= 1;
  const a = new MessageAssembler(makeTemplate(1000), 7, true);
  t.match(feed(a, msg, [300, 600]), { ok: false, reason: 'corrupt' });
  const lax = new MessageAssembler(makeTemplate(1000), 7, false);
  t.match(feed(lax, msg, []), { ok: true }, 'verify off skips the memcmp');
});

t.test('foreign, short and wrong-length messages are classified', async (t) => {
  const a = new MessageAssembler(makeTemplate(1000), 7, true);
  t.match(feed(a, message(1000, 1, 8, 1n), []), { ok: false, reason: 'foreign' }, 'other run id');
  t.match(feed(a, Buffer.from('ERROR: x'), []), { ok: false, reason: 'short' });
  const truncated = message(1000, 1, 7, 1n).subarray(0, 800);
  t.match(feed(a, truncated, []), { ok: false, reason: 'length' });
  const longer = Buffer.concat([message(1000, 1, 7, 1n), Buffer.alloc(10)]);
  t.match(feed(a, longer, []), { ok: false }, 'longer than the template');
});

t.test('template is deterministic and not constant', async (t) => {
  const x = makeTemplate(4096);
  t.ok(x.equals(makeTemplate(4096)));
  t.equal(x.subarray(0, HEADER_BYTES).every((b) => b === 0), true, 'header area zeroed');
  t.ok(new Set(x.subarray(HEADER_BYTES)).size > 200, 'filler uses most byte values');
  t.throws(() => makeTemplate(HEADER_BYTES - 1));
});
