// The test page's HTTP side, without a browser: the page, its assets under /_/ (two path
// segments, so never a stream route), and DISABLE_TEST_CLIENT.
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { ensurePageBuilt } from './helpers.js';

ensurePageBuilt();

t.test('the page and its assets', async (t) => {
  const { httpUrl } = await startTestServer(t);
  const page = await fetch(httpUrl('/'));
  t.equal(page.status, 200);
  const html = await page.text();
  t.match(html, /ws-stream-server test client/);
  t.match(html, /<script type="module" src="\/_\/app\.js">/, 'the page loads its module from /_/');
  t.notMatch(html, /https?:\/\/(?!127\.0\.0\.1)[a-z]/i, 'no external URLs (no CDN)');

  for (const [path, type] of [
    ['/_/app.js', 'text/javascript; charset=utf-8'],
    ['/_/app.js.map', 'application/json; charset=utf-8'],
    ['/_/app.css', 'text/css; charset=utf-8'],
    ['/_/hls.min.mjs', 'text/javascript; charset=utf-8'],
  ] as const) {
    const response = await fetch(httpUrl(path));
    t.equal(response.status, 200, `${path} is served`);
    t.equal(response.headers.get('content-type'), type, `${path} as ${type}`);
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    t.ok((await response.arrayBuffer()).byteLength > 100, `${path} has content`);
  }
  const app = await (await fetch(httpUrl('/_/app.js'))).text();
  t.notMatch(app, /^import .* from |^export .* from /m, 'the page is one bundle: no static imports left');
  t.same([...app.matchAll(/\bimport\(\s*(?:\/\*.*?\*\/\s*)*([^)]*)\)/g)].map((match) => match[1]!.trim()), ['specifier', 'HLS_MODULE'], 'dynamic imports: the SDK\'s Node-only `ws` (never reached in a browser) and hls.js from /_/');
  t.notMatch(app, /\brequire\(|\bBuffer\./, 'nothing Node-only');
  t.match(app, /\bWebmParser = class\b/, 'the server\'s own WebM parser (src/media) is in the page');
  t.match(app, /\bConnection = class\b/, 'and the client SDK\'s connection (src/client)');

  const missing = await fetch(httpUrl('/_/nothing.js'));
  t.equal(missing.status, 404, 'unknown assets are 404');
  t.equal(await missing.text(), 'Not found.');
  t.equal((await fetch(httpUrl('/_/index.html'))).status, 404, 'index.html only at /');
  t.equal((await fetch(httpUrl('/_/..%2Fpackage.json'))).status, 404, 'no path tricks');
  t.equal((await fetch(httpUrl('/_/app.js/receive'))).status, 426, 'three segments stay a stream route');
});

t.test('DISABLE_TEST_CLIENT=YES turns the page and its assets off', async (t) => {
  const { httpUrl } = await startTestServer(t, { disableTestClient: 'YES' });
  t.match(await (await fetch(httpUrl('/'))).text(), /^Websocket streaming server - Version /);
  t.equal((await fetch(httpUrl('/_/app.js'))).status, 404);
  t.equal((await fetch(httpUrl('/_/hls.min.mjs'))).status, 404);
});
