import { spawn } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { TestClient, patternBytes } from '../helpers/client.js';
import { startTestServer } from '../helpers/server.js';
import { cli, decodeErrors, ensureBuilt, ffmpeg, flvArgs, makeFlv } from './helpers.js';

t.before(ensureBuilt);

t.test('ffmpeg | publish, and receive -o out.flv, give a file that decodes', async (t) => {
  const { url } = await startTestServer(t);
  const dir = t.testdir();
  const out = join(dir, 'out.flv');
  const receiver = cli(['receive', '--verbose', url('/demo/secret/receive'), '-o', out]);
  await receiver.stderrLine('waiting for the stream');

  const encoder = spawn(ffmpeg(), flvArgs(3, '-'), { stdio: ['ignore', 'pipe', 'inherit'] });
  const encoded: Buffer[] = [];
  encoder.stdout.on('data', (data: Buffer) => encoded.push(data));
  const publisher = cli(['publish', url('/demo/secret')], { stdin: encoder.stdout });
  t.equal(await publisher.exit, 0, `publish exits 0 (stderr: ${publisher.stderr()})`);
  t.equal(await receiver.exit, 0, `receive exits 0 when the publisher ends (stderr: ${receiver.stderr()})`);
  t.match(receiver.stderr(), 'the publisher ended');
  t.equal(publisher.stderr(), '', 'no progress line when stderr is not a terminal');

  t.same(await readFile(out), Buffer.concat(encoded), 'byte-identical to what ffmpeg wrote');
  t.equal(await decodeErrors(out), '', 'ffmpeg decodes it without a single error');
});

t.test('receive waits for a late publisher; --wait keeps going across publishers until interrupted', async (t) => {
  const { url } = await startTestServer(t);
  const out = join(t.testdir(), 'two.bin');
  const receiver = cli(['receive', '--wait', '-v', url('/late/k'), '-o', out]);
  const sessions = [patternBytes(50_000, 1), patternBytes(70_000, 2)];
  for (const [index, bytes] of sessions.entries()) {
    // Connected (again) and waiting: a session that ends before that is not seen by anyone.
    await receiver.stderrLine('waiting for the stream', index + 1);
    const publisher = await TestClient.connect(url('/late/k/publish'));
    await publisher.send(bytes);
    await publisher.close();
    await receiver.stderrLine('the publisher ended', index + 1);
  }
  receiver.child.kill('SIGINT');
  t.equal(await receiver.exit, 0, 'an interrupted --wait receive exits 0');
  t.same(await readFile(out), Buffer.concat(sessions), 'both sessions, in order');
});

t.test('probe waits for the stream and prints the first chunk\'s size, with ffprobe\'s codecs when there is one', async (t) => {
  const { url } = await startTestServer(t);
  const dir = t.testdir();
  const file = join(dir, 'in.flv');
  await makeFlv(file, 1);

  const waiting = cli(['probe', url('/probe/k')], { env: { FFPROBE_PATH: '', PATH: '/nonexistent' } });
  // The publisher stays until the probe is done: a probe that connects after a publisher ended waits for the next one.
  const publisher = await TestClient.connect(url('/probe/k/publish'));
  const flv = await readFile(file);
  await publisher.send(flv.subarray(0, 64 * 1024));
  await publisher.send(flv.subarray(64 * 1024));
  t.equal(await waiting.exit, 0);
  const probed = JSON.parse(waiting.stdout().toString()) as { bytes: number; container: string };
  t.equal(probed.container, 'flv');
  t.ok(probed.bytes > 0 && probed.bytes <= 64 * 1024, `one chunk of the stream (${probed.bytes} bytes)`);
  t.match(waiting.stderr(), 'ffprobe not found');
  await publisher.close();

  // No ffprobe here: a stand-in checks how it is called and answers like ffprobe would.
  const fake = join(dir, 'ffprobe');
  const seen = join(dir, 'seen');
  await writeFile(
    fake,
    `#!/bin/sh\necho "$@" > '${seen}'\nwc -c >> '${seen}'\necho '{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":320,"height":240}]}'\n`,
  );
  await chmod(fake, 0o755);
  const holder = await TestClient.connect(url('/probe2/k/publish'));
  await holder.send(patternBytes(1234, 3));
  const withFfprobe = cli(['probe', url('/probe2/k/probe')], { env: { FFPROBE_PATH: fake } });
  t.equal(await withFfprobe.exit, 0, withFfprobe.stderr());
  t.same(JSON.parse(withFfprobe.stdout().toString()), {
    bytes: 1234,
    container: 'opaque',
    streams: [{ codec_type: 'video', codec_name: 'h264', width: 320, height: 240 }],
  });
  const [args = '', bytes = ''] = (await readFile(seen, 'utf8')).split('\n');
  t.match(args, '-of json -i pipe:0');
  t.equal(bytes.trim(), '1234', 'ffprobe got the chunk on stdin');
  await holder.close();
});
