// Recording: every publishing session written as-is to RECORD_DIR, without ffmpeg.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { checkNoChildrenAtEnd, decodeFile, ffmpeg, makeSample, outputsOf, poll, publishPaced, scratchDir, startApp } from './helpers.js';

const SECONDS = 6;
/** makeSample's GOP: 25 frames at 25 fps. */
const GOP_SECONDS = 1;

async function publishAll(url: string, sample: Buffer): Promise<TestClient> {
  const publisher = await TestClient.connect(url);
  // Faster than real time: the recording's timing comes from the stream's timestamps.
  await publishPaced(publisher, sample, SECONDS / 4, { chunkBytes: 8192 });
  return publisher;
}

t.test('a WebM session is recorded as-is, decodes, and lasts as long as what was published', async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('webm-vp8', { seconds: SECONDS, size: '320x180', videoBitrate: '500k' });
  const { app, url, log } = await startApp(t, { recordDir: dir });
  const publisher = await publishAll(url('/show/key/publish'), sample);
  const { channel, ...outputs } = await outputsOf(app, 'show');
  const streamId = channel.publisher!.streamId;
  t.equal(outputs.bridges.length, 0, 'recording alone runs no bridge');
  await publisher.close();
  await poll('the recording to finish', () => log.matching(/\[RECORD\] 'show': recorded/).length > 0);
  t.match(outputs.recording!.status(), { state: 'done', bytes: sample.length, error: null });

  const files = readdirSync(join(dir, 'show'));
  t.equal(files.length, 1);
  t.match(files[0], new RegExp(`^\\d{8}T\\d{6}Z_${streamId}\\.webm$`), 'RECORD_DIR/<channel>/<UTC start>_<streamId>.webm');
  const file = join(dir, 'show', files[0]!);
  t.ok(readFileSync(file).equals(sample), 'the file holds exactly the published bytes');
  const decoded = await decodeFile(file);
  t.equal(decoded.errors, '', 'it decodes without errors');
  t.match(decoded.report, { video: { codec: 'vp8' }, audio: { codec: 'opus' } });
  t.ok(Math.abs(decoded.seconds - SECONDS) <= GOP_SECONDS, `its duration (${decoded.seconds} s) is the published ${SECONDS} s within one GOP`);
});

t.test('RECORD_MAX_SIZE_MB rolls to new parts at keyframes; each part stands alone', async (t) => {
  const dir = scratchDir(t);
  const sample = await makeSample('webm-vp8', { seconds: SECONDS, size: '320x180', videoBitrate: '1000k' });
  const capMb = 0.25;
  const { url, log } = await startApp(t, { recordDir: dir, recordMaxSizeMb: String(capMb) });
  const publisher = await publishAll(url('/big/key/publish'), sample);
  await publisher.close();
  await poll('the recording to finish', () => log.matching(/\[RECORD\] 'big': recorded/).length > 0);

  const files = readdirSync(join(dir, 'big')).sort((a, b) => partOf(a) - partOf(b));
  t.ok(files.length >= 3, `${files.length} parts for ${sample.length} bytes with a ${capMb} MiB cap`);
  t.match(files.slice(1), files.slice(1).map((_, i) => new RegExp(`_part${i + 2}\\.webm$`)), 'parts are numbered _part2, _part3 …');
  let total = 0;
  for (const [i, name] of files.entries()) {
    const path = join(dir, 'big', name);
    const size = statSync(path).size;
    if (i < files.length - 1) t.ok(size >= capMb * 1024 * 1024, `${name} reached the cap before rolling (${size} bytes)`);
    const decoded = await decodeFile(path);
    t.equal(decoded.errors, '', `${name} decodes on its own`);
    t.match(decoded.report, { video: { codec: 'vp8' } });
    total += decoded.seconds;
  }
  t.ok(Math.abs(total - SECONDS) <= GOP_SECONDS, `the parts add up to the published duration (${total.toFixed(2)} s)`);
  t.equal(log.matching(/RECORD_MAX_SIZE_MB reached, continuing in/).length, files.length - 1, 'each roll is logged');
});

t.test('RECORD_REMUX gives a WebM recording its duration; FLV gets the .flv extension', async (t) => {
  const dir = scratchDir(t);
  const webm = await makeSample('webm-vp8', { seconds: SECONDS, size: '320x180', videoBitrate: '300k' });
  const flv = await makeSample('flv', { seconds: 3, size: '320x180', videoBitrate: '300k' });
  const { url, log } = await startApp(t, { recordDir: dir, recordRemux: 'YES' });
  const first = await publishAll(url('/remux/key/publish'), webm);
  const second = await publishAll(url('/flv/key/publish'), flv);
  await Promise.all([first.close(), second.close()]);
  await poll('both recordings to finish', () => log.matching(/\[RECORD\] '(remux|flv)': recorded/).length === 2);

  const [webmFile] = readdirSync(join(dir, 'remux'));
  const { stderr } = await ffmpeg(['-loglevel', 'info', '-i', join(dir, 'remux', webmFile!), '-f', 'null', '-']);
  const duration = /Duration: (\d+):(\d+):([\d.]+)/.exec(stderr);
  t.ok(duration !== null, 'the remuxed WebM states its duration');
  const seconds = Number(duration![1]) * 3600 + Number(duration![2]) * 60 + Number(duration![3]);
  t.ok(Math.abs(seconds - SECONDS) <= GOP_SECONDS, `duration ${seconds} s`);
  t.same(readdirSync(join(dir, 'remux')).length, 1, 'no temporary file left');
  const [flvFile] = readdirSync(join(dir, 'flv'));
  t.match(flvFile, /\.flv$/);
  t.ok(readFileSync(join(dir, 'flv', flvFile!)).equals(flv), 'FLV is not remuxed: byte-exact');
});

t.test('an unwritable RECORD_DIR stops the recording, never the stream', async (t) => {
  const dir = scratchDir(t);
  const blocker = join(dir, 'not-a-folder');
  writeFileSync(blocker, 'a file where the folder should be');
  const sample = await makeSample('webm-vp8', { seconds: 3, size: '320x180', videoBitrate: '300k' });
  const { app, url, log } = await startApp(t, { recordDir: join(blocker, 'records') });
  t.match(log.matching(/\[WARNING\] \[RECORD\] RECORD_DIR/), [/cannot be created/], 'startup warns');
  const receiver = await TestClient.connect(url('/safe/key/receive'));
  const publisher = await TestClient.connect(url('/safe/key/publish'));
  const { channel, recording } = await outputsOf(app, 'safe');
  await publishPaced(publisher, sample, 1, { chunkBytes: 8192 });
  await poll('the recording to fail', () => recording!.status().state === 'failed');
  t.match(recording!.status().error, /cannot create .*records\/safe: ENOTDIR/);
  t.match(log.matching(/\[ERROR\] \[RECORD\] 'safe'/), [/recording stopped \(the stream goes on\)/]);
  await poll('the receiver to get everything', () => receiver.binaryBytes >= sample.length);
  t.ok(Buffer.concat(receiver.binaryMessages).equals(sample), 'the receiver got the whole stream');
  t.equal(channel.publisher?.streamId !== undefined, true, 'the publisher is still live');
  t.notOk([...channel.receivers].some((candidate) => candidate.info.ip === 'internal'), 'the failed recorder left the channel');
  await publisher.close();
  await receiver.closed;
});

function partOf(name: string): number {
  return Number(/_part(\d+)\./.exec(name)?.[1] ?? 1);
}

checkNoChildrenAtEnd(t);
