import t from 'tap';
import { FrameParser, Opcode, type FrameHandler } from '../../bench/frame-parser.js';
import { encodeClientFrame } from '../../bench/ws-client.js';

/** Independent server-side encoder (unmasked unless a key is given) used as the test oracle. */
function frame(opcode: number, payload: Buffer | string, opts: { fin?: boolean; rsv?: number; maskKey?: Buffer; len?: 'auto' | '16' | '64' } = {}): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const n = body.length;
  const form = opts.len ?? 'auto';
  const use = form === 'auto' ? (n < 126 ? '7' : n < 65536 ? '16' : '64') : form;
  const head: number[] = [((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode];
  const maskBit = opts.maskKey ? 0x80 : 0;
  if (use === '7') head.push(maskBit | n);
  else if (use === '16') head.push(maskBit | 126, n >> 8, n & 0xff);
  else {
    head.push(maskBit | 127);
    const hi = Math.floor(n / 2 ** 32);
    head.push((hi >>> 24) & 0xff, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff);
    head.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }
  let data = body;
  if (opts.maskKey) {
    head.push(...opts.maskKey);
    data = Buffer.from(body.map((b, i) => b ^ opts.maskKey![i & 3]!));
  }
  return Buffer.concat([Buffer.from(head), data]);
}

type Event =
  | { kind: 'message'; opcode: number; data: Buffer }
  | { kind: 'ping' | 'pong'; data: Buffer }
  | { kind: 'close'; code: number | undefined; reason: string }
  | { kind: 'error'; message: string };

/** Collects parser events; message data slices are copied since they are only valid during the call. */
function collector(opts?: ConstructorParameters<typeof FrameParser>[1]): { parser: FrameParser; events: Event[] } {
  const events: Event[] = [];
  let opcode = -1;
  let parts: Buffer[] = [];
  const handler: FrameHandler = {
    onMessageStart: (op) => {
      opcode = op;
      parts = [];
    },
    onMessageData: (d, s, e) => {
      parts.push(Buffer.from(d.subarray(s, e)));
    },
    onMessageEnd: () => events.push({ kind: 'message', opcode, data: Buffer.concat(parts) }),
    onPing: (p) => events.push({ kind: 'ping', data: Buffer.from(p) }),
    onPong: (p) => events.push({ kind: 'pong', data: Buffer.from(p) }),
    onClose: (code, reason) => events.push({ kind: 'close', code, reason }),
    onError: (err) => events.push({ kind: 'error', message: err.message }),
  };
  return { parser: new FrameParser(handler, opts), events };
}

function parseAll(...chunks: Buffer[]): Event[] {
  const { parser, events } = collector();
  for (const c of chunks) parser.push(c);
  return events;
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

t.test('7, 16 and 64-bit payload lengths', async (t) => {
  for (const n of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    const payload = bytes(n);
    const f = frame(Opcode.Binary, payload);
    const expectHeader = n < 126 ? 2 : n < 65536 ? 4 : 10;
    t.equal(f.length - n, expectHeader, `oracle header size for ${n}`);
    const events = parseAll(f);
    t.equal(events.length, 1, `one event for ${n}`);
    const ev = events[0]!;
    t.equal(ev.kind, 'message');
    if (ev.kind === 'message') {
      t.equal(ev.opcode, Opcode.Binary);
      t.ok(ev.data.equals(payload), `payload of ${n} bytes intact`);
    }
  }
});

t.test('non-minimal length encodings still parse to the right payload', async (t) => {
  const p = bytes(10);
  for (const len of ['16', '64'] as const) {
    const [ev] = parseAll(frame(Opcode.Binary, p, { len }));
    t.ok(ev?.kind === 'message' && ev.data.equals(p), `${len}-bit field`);
  }
});

t.test('text messages report the text opcode', async (t) => {
  const [ev] = parseAll(frame(Opcode.Text, 'ERROR: Receiver too slow'));
  t.ok(ev?.kind === 'message');
  if (ev?.kind === 'message') {
    t.equal(ev.opcode, Opcode.Text);
    t.equal(ev.data.toString(), 'ERROR: Receiver too slow');
  }
});

// A stream mixing every header form: 7-bit text, 16-bit binary, ping, 64-bit binary, fragmented
// binary with a pong in the middle, and a close.
const big = bytes(70_000, 7);
const mid = bytes(300, 3);
const stream = Buffer.concat([
  frame(Opcode.Text, 'h'),
  frame(Opcode.Binary, mid),
  frame(Opcode.Ping, 'p1'),
  frame(Opcode.Binary, big),
  frame(Opcode.Binary, bytes(5, 1), { fin: false }),
  frame(Opcode.Pong, 'x'),
  frame(Opcode.Continuation, bytes(200, 2), { fin: false }),
  frame(Opcode.Continuation, bytes(3, 4)),
  frame(Opcode.Close, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])),
]);
const expected = parseAll(stream);

/** Event lists equal, payload bytes compared with Buffer.equals (fast on 70 KB payloads). */
function sameEvents(a: Event[], b: Event[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    if (x.kind !== y.kind) return false;
    if ('data' in x && 'data' in y) return x.data.equals(y.data) && (x.kind !== 'message' || (y.kind === 'message' && x.opcode === y.opcode));
    return JSON.stringify(x) === JSON.stringify(y);
  });
}

t.test('reference parse of the mixed stream', async (t) => {
  t.notOk(sameEvents(expected, parseAll(stream.subarray(0, stream.length - 1))), 'comparison notices a missing event');
  t.same(
    expected.map((e) => e.kind),
    ['message', 'message', 'ping', 'message', 'pong', 'message', 'close'],
  );
  const [, second, , fourth, , sixth, close] = expected;
  t.ok(second?.kind === 'message' && second.data.equals(mid));
  t.ok(fourth?.kind === 'message' && fourth.data.equals(big));
  t.ok(sixth?.kind === 'message' && sixth.data.equals(Buffer.concat([bytes(5, 1), bytes(200, 2), bytes(3, 4)])), 'fragments joined in order');
  t.same(close, { kind: 'close', code: 1000, reason: 'bye' });
});

t.test('split at every byte offset gives identical events', async (t) => {
  // Every offset in the first 420 bytes (covers the 2-, 4- and 10-byte headers and the
  // ping), every offset of the tail (fragments, pong, close) and a spread over the big payload.
  const offsets = new Set<number>();
  for (let i = 0; i <= 420; i++) offsets.add(i);
  for (let i = stream.length - 260; i <= stream.length; i++) offsets.add(i);
  for (let i = 420; i < stream.length - 260; i += 997) offsets.add(i);
  let mismatches = 0;
  for (const k of offsets) {
    const got = parseAll(stream.subarray(0, k), stream.subarray(k));
    if (!sameEvents(got, expected)) mismatches++;
  }
  t.equal(mismatches, 0, `all ${offsets.size} two-way splits match`);
});

t.test('every header byte split off on its own (three-way splits)', async (t) => {
  // Header of the 64-bit frame starts after text(3) + binary(4+300) + ping(2+2).
  const start = 3 + 304 + 4;
  t.equal(stream[start], 0x80 | Opcode.Binary);
  t.equal(stream[start + 1], 127);
  let mismatches = 0;
  for (let i = start; i <= start + 10; i++) {
    for (let j = i; j <= start + 11; j++) {
      const got = parseAll(stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j));
      if (!sameEvents(got, expected)) mismatches++;
    }
  }
  t.equal(mismatches, 0);
});

t.test('one byte at a time', async (t) => {
  const { parser, events } = collector();
  for (let i = 0; i < stream.length; i++) parser.push(stream.subarray(i, i + 1));
  t.same(events, expected);
});

t.test('data slices point into the pushed chunk without copies', async (t) => {
  const payload = bytes(1000);
  const f = frame(Opcode.Binary, payload);
  const seen: Array<[Buffer, number, number]> = [];
  const p = new FrameParser({
    onMessageStart: () => undefined,
    onMessageData: (d, s, e) => seen.push([d, s, e]),
    onMessageEnd: () => undefined,
    onPing: () => undefined,
    onPong: () => undefined,
    onClose: () => undefined,
    onError: () => undefined,
  });
  p.push(f);
  t.equal(seen.length, 1);
  t.equal(seen[0]![0], f, 'same Buffer object');
  t.same([seen[0]![1], seen[0]![2]], [4, 1004]);
});

t.test('ping payload is delivered and a masked pong encodes it', async (t) => {
  const [ev] = parseAll(frame(Opcode.Ping, 'are you there'));
  t.same(ev, { kind: 'ping', data: Buffer.from('are you there') });
  const pong = encodeClientFrame(Opcode.Pong, Buffer.from('are you there'));
  t.equal(pong[0], 0x80 | Opcode.Pong, 'FIN + pong opcode');
  t.equal(pong[1]! & 0x80, 0x80, 'mask bit set');
  t.equal(pong[1]! & 0x7f, 13);
  const key = pong.subarray(2, 6);
  const unmasked = Buffer.from(pong.subarray(6).map((b, i) => b ^ key[i & 3]!));
  t.equal(unmasked.toString(), 'are you there');
});

t.test('client frames with 16 and 64-bit lengths are masked correctly', async (t) => {
  for (const n of [200, 70_000]) {
    const payload = bytes(n, 9);
    const f = encodeClientFrame(Opcode.Binary, payload);
    const headerLen = n < 65536 ? 4 : 10;
    t.equal(f[1]! & 0x7f, n < 65536 ? 126 : 127);
    const key = f.subarray(headerLen, headerLen + 4);
    const body = f.subarray(headerLen + 4);
    t.equal(body.length, n);
    t.ok(Buffer.from(body.map((b, i) => b ^ key[i & 3]!)).equals(payload), `${n} bytes unmask to the payload`);
  }
});

t.test('close frames', async (t) => {
  t.same(parseAll(frame(Opcode.Close, Buffer.alloc(0))), [{ kind: 'close', code: undefined, reason: '' }]);
  t.same(parseAll(frame(Opcode.Close, Buffer.from([0x03, 0xf5]))), [{ kind: 'close', code: 1013, reason: '' }]);
  const [ev] = parseAll(frame(Opcode.Close, Buffer.from([0x03])));
  t.equal(ev?.kind, 'error', 'one-byte close payload is a protocol error');
});

t.test('protocol violations stop the parser', async (t) => {
  const cases: Array<[string, Buffer]> = [
    ['masked server frame', frame(Opcode.Binary, 'x', { maskKey: Buffer.from([1, 2, 3, 4]) })],
    ['RSV bit', frame(Opcode.Binary, 'x', { rsv: 4 })],
    ['reserved data opcode', frame(0x3, 'x')],
    ['reserved control opcode', frame(0xb, 'x')],
    ['fragmented control frame', frame(Opcode.Ping, 'x', { fin: false })],
    ['control frame over 125 bytes', frame(Opcode.Ping, bytes(126))],
    ['continuation without a message', frame(Opcode.Continuation, 'x')],
    ['data frame inside a fragmented message', Buffer.concat([frame(Opcode.Binary, 'a', { fin: false }), frame(Opcode.Binary, 'b')])],
    ['64-bit length with MSB set', Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1])],
  ];
  for (const [name, input] of cases) {
    const { parser, events } = collector();
    parser.push(input);
    parser.push(frame(Opcode.Text, 'after')); // must be ignored
    t.equal(events.length, 1, `${name}: exactly one event`);
    t.equal(events[0]?.kind, 'error', `${name}: reported as error`);
    t.ok(parser.hasFailed, `${name}: parser stopped`);
  }
});

t.test('maxMessageBytes bounds the sum of fragments', async (t) => {
  const { parser, events } = collector({ maxMessageBytes: 100 });
  parser.push(frame(Opcode.Binary, bytes(60), { fin: false }));
  parser.push(frame(Opcode.Continuation, bytes(60)));
  t.equal(events.at(-1)?.kind, 'error');
  const ok = collector({ maxMessageBytes: 100 });
  ok.parser.push(frame(Opcode.Binary, bytes(100)));
  t.equal(ok.events[0]?.kind, 'message', 'exactly the limit is accepted');
});
