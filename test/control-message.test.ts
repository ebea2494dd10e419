import t from 'tap';
import { Backoff } from '../src/coordinator/backoff.js';
import { ControlMessage, controlUrl } from '../src/coordinator/index.js';

t.test('parses type, case-insensitive arguments and body', async (t) => {
  const message = ControlMessage.parse('publish-accept\r\nRequest-Id: 7\r\nStream-Channel:  news \r\nno colon here\r\n\r\nline 1\nline 2');
  t.equal(message.type, 'PUBLISH-ACCEPT');
  t.equal(message.get('Request-ID'), '7');
  t.equal(message.get('request-id'), '7');
  t.equal(message.get('stream-channel'), 'news');
  t.equal(message.get('Stream-ID'), undefined);
  t.equal(message.body, 'line 1\nline 2');
});

t.test('serializes with the names as given, and values cannot forge lines', async (t) => {
  const message = new ControlMessage('PUBLISH-REQUEST', { 'Request-ID': '1', 'Stream-Key': 'a\nStream-Channel: evil' });
  t.equal(message.serialize(), 'PUBLISH-REQUEST\nRequest-ID: 1\nStream-Key: a Stream-Channel: evil');
  t.equal(ControlMessage.parse(message.serialize()).get('Stream-Channel'), undefined);
  t.equal(new ControlMessage('HEARTBEAT').serialize(), 'HEARTBEAT');
  t.equal(new ControlMessage('ERROR', { 'Error-Code': '1' }, 'details').serialize(), 'ERROR\nError-Code: 1\n\ndetails');
});

t.test('garbage never throws', async (t) => {
  for (const raw of ['', '\n', ':', '\u0000\u0001', 'A\n:b\n::\n']) t.type(ControlMessage.parse(raw).type, 'string');
});

t.test('the control URL replaces the base path', async (t) => {
  t.equal(controlUrl('wss://10.0.0.1:8080/'), 'wss://10.0.0.1:8080/ws/control/wss');
  t.equal(controlUrl('ws://coordinator.local/api/'), 'ws://coordinator.local/ws/control/wss');
});

t.test('backoff doubles its ceiling up to the maximum, with jitter inside [min, ceiling]', async (t) => {
  const top = new Backoff(100, 1000, () => 1);
  t.same([1, 2, 3, 4, 5, 6].map(() => top.next()), [100, 200, 400, 800, 1000, 1000]);
  top.reset();
  t.equal(top.next(), 100);
  const bottom = new Backoff(100, 1000, () => 0);
  t.same([1, 2, 3].map(() => bottom.next()), [100, 100, 100]);
});
