import t from 'tap';
import { Rejections } from '../src/protocol/errors.js';
import { isValidId, parseStreamRoute } from '../src/protocol/route.js';

const rejectionOf = (path: string): unknown => {
  const result = parseStreamRoute(path, 128);
  return result.ok ? undefined : result.rejection;
};

t.test('valid routes for every kind', async (t) => {
  for (const kind of ['publish', 'receive', 'receive-clear-cache', 'probe'] as const) {
    t.same(parseStreamRoute(`/My-Channel_1/k-E_y9/${kind}`, 128), { ok: true, route: { channel: 'My-Channel_1', key: 'k-E_y9', kind } });
  }
  t.same(parseStreamRoute('/c/k/receive?x=1', 128), { ok: true, route: { channel: 'c', key: 'k', kind: 'receive' } });
});

t.test('checks run in the order channel, key, kind', async (t) => {
  t.equal(rejectionOf('/c.h/k.y/nope'), Rejections.INVALID_CHANNEL);
  t.equal(rejectionOf('/ch/k.y/nope'), Rejections.INVALID_KEY);
  t.equal(rejectionOf('/ch/ky/nope'), Rejections.INVALID_KIND);
  t.equal(rejectionOf('/ch/ky/Publish'), Rejections.INVALID_KIND, 'kinds are case-sensitive');
  t.equal(rejectionOf('//ky/probe'), Rejections.INVALID_CHANNEL, 'empty channel');
  t.equal(rejectionOf('/%41/ky/probe'), Rejections.INVALID_CHANNEL, 'no percent-decoding');
});

t.test('paths without three segments are not stream routes', async (t) => {
  for (const path of ['/', '/a', '/a/b', '/a/b/c/d', '/a/b/receive/', 'a/b/receive']) {
    t.same(parseStreamRoute(path, 128), { ok: false, rejection: null }, path);
  }
});

t.test('ID length limit', async (t) => {
  t.ok(isValidId('a'.repeat(128), 128));
  t.notOk(isValidId('a'.repeat(129), 128));
  t.notOk(isValidId('', 128));
  t.notOk(isValidId('ü', 128));
});
