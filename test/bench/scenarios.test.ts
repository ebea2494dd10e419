import t from 'tap';
import type { PublishResult } from '../../bench/publisher.js';
import { combinePublished, scenarioSpecs, serverLaunch, usesServer, usesTls } from '../../bench/scenarios.js';

const base = { serverCommand: 'node bin/ws-stream-server.js --http-port {port} --bind-address 127.0.0.1', tcpCommand: 'node relay.js --port {port}', serverEnv: { WORKERS: '2' }, tls: { certFile: '/tmp/x/bench.crt', keyFile: '/tmp/x/bench.key' } };

t.test('serverLaunch: WORKERS reaches our server, never the TCP relay; wss moves the port to SSL_PORT', async (t) => {
  t.same(serverLaunch(base, 'ws', false, 4000), { command: base.serverCommand, env: { WORKERS: '2' } });
  t.same(serverLaunch(base, 'tcp', false, 4000), { command: base.tcpCommand, env: {} });
  t.same(serverLaunch(base, 'ws', true, 4000), {
    command: 'node bin/ws-stream-server.js --http-port 0 --bind-address 127.0.0.1',
    env: { WORKERS: '2', HTTP_PORT: '0', SSL_PORT: '4000', SSL_CERT: '/tmp/x/bench.crt', SSL_KEY: '/tmp/x/bench.key' },
  });
  t.throws(() => serverLaunch({ ...base, tls: null }, 'ws', true, 4000), /without a certificate/);
});

t.test('the issue scenarios: channels, mid and a-wss', async (t) => {
  const specs = scenarioSpecs(1, [1000], 10_000);
  const { channels, mid } = specs;
  const wss = specs['a-wss'];
  t.ok(channels.kind === 'stream' && channels.channels === 300 && channels.receivers === 300, '300 channels, one receiver each');
  t.ok(channels.kind === 'stream' && channels.pace.kind === 'paced' && channels.pace.bitsPerSecond === 2_000_000);
  t.ok(mid.kind === 'stream' && mid.channels === 20 && mid.receivers === 1000, '20 channels x 50 receivers');
  t.ok(wss.kind === 'stream' && wss.tls && specs.a.kind === 'stream' && !specs.a.tls && wss.receivers === specs.a.receivers && wss.pace.kind === 'paced', '(a) over TLS');
  const quick = scenarioSpecs(0.1, [1000], 10);
  t.ok(quick.channels.kind === 'stream' && quick.channels.channels === 30 && quick.channels.receivers === 30, '--receivers-scale scales the channels');
  t.ok(quick.mid.kind === 'stream' && quick.mid.channels === 20 && quick.mid.receivers === 100, '... and the receivers per channel of mid');
  t.same([usesServer(specs.a), usesServer(specs['a-tcp']), usesServer(specs.g), usesServer(specs.memory), usesServer(specs['scale-tcp'])], [true, false, false, true, false]);
  t.same([usesTls(wss), usesTls(specs.a), usesTls(specs.e)], [true, false, false]);
});

function published(firstMs: number, sent: number, intervalMs: number, measuredFromIndex: number): PublishResult {
  const ns = (ms: number): bigint => BigInt(Math.round(ms * 1e6));
  return {
    sent,
    bytes: sent * 1000,
    firstSendNs: ns(firstMs),
    lastSendNs: ns(firstMs + (sent - 1) * intervalMs),
    firstMeasuredNs: ns(firstMs + measuredFromIndex * intervalMs),
    measuredSent: sent - measuredFromIndex,
    maxBacklogBytes: firstMs,
    lateSends: 1,
    serverTexts: [`t${firstMs}`],
    closedByServer: firstMs === 50,
  };
}

t.test('combinePublished: several interleaved publishers make one stream over one window', async (t) => {
  // One publisher: 11 messages every 100 ms, 10 measured from 100 ms: window 100..1000 ms + one interval.
  const one = combinePublished([published(0, 11, 100, 1)], 1000);
  t.equal(one.sent, 11);
  t.equal(one.measuredSent, 10);
  t.ok(Math.abs(one.windowS - 1.0) < 1e-9);
  t.ok(Math.abs(one.mbps - (10 * 1000 * 8) / 1.0 / 1e6) < 1e-9);
  // Two publishers offset by half an interval: one message every 50 ms together.
  const two = combinePublished([published(0, 11, 100, 1), published(50, 11, 100, 1)], 1000);
  t.equal(two.sent, 22);
  t.equal(two.measuredSent, 20);
  t.ok(Math.abs(two.windowS - (1.05 - 0.1 + 0.05)) < 1e-9, 'first measured of either .. last of either + interval/2');
  t.equal(two.lateSends, 2);
  t.equal(two.maxBacklogBytes, 50);
  t.equal(two.closedByServer, true);
  t.same(two.serverTexts, ['t0', 't50']);
});
