import t from 'tap';
import { IpList, canonicalAddress } from '../src/config/ip-list.js';
import { IpConnectionLimiter } from '../src/server/ip-limiter.js';

t.test('plain IPs and CIDR ranges, IPv4 and IPv6', async (t) => {
  const list = IpList.parse('10.0.0.0/8, 192.168.1.7,2001:db8::/32,::1');
  t.ok(list.includes('10.20.30.40'));
  t.ok(list.includes('192.168.1.7'));
  t.notOk(list.includes('192.168.1.8'));
  t.ok(list.includes('2001:db8::1'));
  t.ok(list.includes('::1'));
  t.notOk(list.includes('2001:db9::1'));
  t.notOk(list.includes('not an ip'));
});

t.test('IPv4-mapped peers match IPv4 entries, and mapped entries become IPv4 rules', async (t) => {
  t.ok(IpList.parse('127.0.0.1').includes('::ffff:127.0.0.1'));
  t.ok(IpList.parse('127.0.0.1').includes('0000:0000:0000:0000:0000:ffff:7f00:0001'), 'uWebSockets.js long form');
  t.ok(IpList.parse('::ffff:10.0.0.0/104').includes('10.1.2.3'));
  t.ok(IpList.parse('::ffff:10.0.0.1').includes('10.0.0.1'));
  t.equal(canonicalAddress('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
  t.equal(canonicalAddress('0000:0000:0000:0000:0000:0000:0000:0001'), '::1');
});

t.test('* matches everything; empty matches nothing', async (t) => {
  t.ok(IpList.parse('*').includes('8.8.8.8'));
  t.ok(IpList.parse('10.0.0.1,*').matchesAll);
  t.ok(IpList.parse('').isEmpty);
  t.ok(IpList.parse(' , ').isEmpty);
  t.notOk(IpList.parse('').includes('127.0.0.1'));
});

t.test('bad entries are named', async (t) => {
  t.throws(() => IpList.parse('10.0.0.0/8,300.1.1.1'), /"300\.1\.1\.1"/);
  t.throws(() => IpList.parse('10.0.0.0/40'), /"10\.0\.0\.0\/40"/);
});

t.test('limiter counts per IP, exempts the whitelist, and releases each slot once', async (t) => {
  const limiter = new IpConnectionLimiter(2, IpList.parse('10.0.0.0/8'));
  const a = limiter.acquire('1.1.1.1');
  const b = limiter.acquire('1.1.1.1');
  t.ok(a && b);
  t.equal(limiter.acquire('1.1.1.1'), undefined);
  t.ok(limiter.acquire('2.2.2.2'), 'other IPs have their own count');
  a!.release();
  a!.release();
  t.equal(limiter.count('1.1.1.1'), 1, 'a double release gives back one slot only');
  t.ok(limiter.acquire('1.1.1.1'));
  for (let i = 0; i < 5; i++) t.ok(limiter.acquire('10.9.9.9'), 'exempt');
  t.equal(limiter.count('10.9.9.9'), 0);
  const unlimited = new IpConnectionLimiter(0, IpList.empty);
  for (let i = 0; i < 10; i++) t.ok(unlimited.acquire('3.3.3.3'));
});
