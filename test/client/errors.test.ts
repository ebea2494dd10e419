import t from 'tap';
import { ClientErrorCodes, StreamClientError, errorFromClose, errorFromHttp, errorFromText } from '../../src/client/errors.js';
import { resolveStreamUrl, streamUrl } from '../../src/client/session.js';
import { Closures, Rejections, SessionErrors } from '../../src/protocol/errors.js';

t.test('every refusal the server can answer maps to its own code, by body and status', async (t) => {
  for (const rejection of Object.values(Rejections)) {
    const error = errorFromHttp(rejection.status, rejection.body);
    t.match(error, { code: rejection.code, status: rejection.status, message: `${rejection.body} (HTTP ${rejection.status})` }, rejection.code);
    t.equal(error.category, ClientErrorCodes[error.code]);
  }
  t.match(errorFromHttp(429, 'slow down (from a proxy)'), { code: 'TOO_MANY_REQUESTS' }, 'a 429 with another body');
  t.match(errorFromHttp(503, ''), { code: 'SHUTTING_DOWN', category: 'connection' });
  t.match(errorFromHttp(502, 'Bad Gateway'), { code: 'CONNECTION_FAILED', status: 502, message: 'unexpected answer: Bad Gateway (HTTP 502)' });
});

t.test('ERROR texts and close frames map to the same codes', async (t) => {
  for (const session of Object.values(SessionErrors)) {
    t.match(errorFromText(session.message), { code: session.code, closeCode: session.closeCode });
    t.match(errorFromClose(session.closeCode, session.closeReason, true), { code: session.code, closeCode: session.closeCode });
  }
  t.equal(errorFromText('ERROR: something new'), undefined);
  t.equal(errorFromClose(Closures.PUBLISHER_ENDED.closeCode, Closures.PUBLISHER_ENDED.closeReason, true), undefined, '1000 is not an error');
  t.match(errorFromClose(Closures.KILLED.closeCode, Closures.KILLED.closeReason, true), { code: 'STREAM_KILLED', category: 'refused' });
  t.match(errorFromClose(Closures.SHUTDOWN.closeCode, Closures.SHUTDOWN.closeReason, true), { code: 'SHUTTING_DOWN', retryable: true });
  t.match(errorFromClose(Closures.IDLE_TIMEOUT.closeCode, Closures.IDLE_TIMEOUT.closeReason, true), { code: 'IDLE_TIMEOUT', retryable: true });
  t.match(errorFromClose(1006, '', true), { code: 'CONNECTION_LOST', category: 'connection' });
  t.match(errorFromClose(1006, '', false), { code: 'CONNECTION_FAILED', message: /in a browser this may also be a refusal/ });
  t.type(errorFromClose(1006, '', false), StreamClientError);
});

t.test('stream URLs are checked and completed', async (t) => {
  t.equal(resolveStreamUrl('ws://h:1/c/k', ['receive'], 'receive'), 'ws://h:1/c/k/receive');
  t.equal(resolveStreamUrl('https://h/c/k/', ['publish'], 'publish'), 'wss://h/c/k/publish');
  t.equal(resolveStreamUrl('ws://h/c/k/probe?x=1', ['probe'], 'probe'), 'ws://h/c/k/probe?x=1', 'the query string is kept');
  t.equal(streamUrl('ws://h:8080', 'demo', 'secret', 'publish'), 'ws://h:8080/demo/secret/publish');
  t.throws(() => resolveStreamUrl('ws://h/c/k/receive', ['publish'], 'publish'), { code: 'INVALID_URL', message: /expected a publish URL/ });
  t.throws(() => resolveStreamUrl('ws://h/c', ['publish'], 'publish'), { code: 'INVALID_URL', message: /\/<channel>\/<key>/ });
  t.throws(() => resolveStreamUrl('ws://h/c%2F/k', ['publish'], 'publish'), { code: 'INVALID_URL', message: /channel may only have/ });
  t.throws(() => resolveStreamUrl('not a url', ['publish'], 'publish'), { code: 'INVALID_URL' });
});
