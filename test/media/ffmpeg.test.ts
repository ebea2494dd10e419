import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { findFfmpeg, requireFfmpeg } from '../../src/bridge/ffmpeg.js';
import { ffmpeg, scratchDir } from './helpers.js';

t.test('FFMPEG_PATH wins, then an ffmpeg on the PATH, then @ffmpeg-installer/ffmpeg', async (t) => {
  const dir = scratchDir(t);
  const fake = join(dir, 'ffmpeg');
  writeFileSync(fake, '#!/bin/sh\necho fake\n');
  chmodSync(fake, 0o755);
  t.same(findFfmpeg({ FFMPEG_PATH: fake, PATH: '' }), { path: fake, source: 'FFMPEG_PATH' });
  t.same(findFfmpeg({ PATH: `/nonexistent:${dir}` }), { path: fake, source: 'system' });
  const bundled = findFfmpeg({ PATH: '/nonexistent' });
  t.equal(bundled?.source, '@ffmpeg-installer/ffmpeg', 'no system ffmpeg: the npm package\'s static build');
  t.equal(findFfmpeg({ FFMPEG_PATH: join(dir, 'missing'), PATH: dir }), undefined, 'a wrong FFMPEG_PATH is not silently replaced');
  t.throws(() => requireFfmpeg({ FFMPEG_PATH: join(dir, 'missing') }), /FFMPEG_PATH=.*missing is not an executable file/);
});

t.test('the ffmpeg found runs and has the encoders the tests use', async (t) => {
  const { stdout } = await ffmpeg(['-encoders']);
  for (const encoder of ['libx264', 'libvpx ', 'libvpx-vp9', 'libopus', ' aac ']) t.match(stdout.toString(), encoder, encoder.trim());
});
