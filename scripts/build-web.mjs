// Bundles the test page (web/app.ts and what it imports from src/: the client SDK's connection,
// the media parsers) into dist/web/app.js for browsers, with esbuild. Fails when anything
// Node-only would end up in the page.
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'web');

const result = await build({
  entryPoints: [join(root, 'web', 'app.ts')],
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
  sourcemap: true,
  metafile: true,
  // Served by the server next to the page, loaded on demand by the HLS panel.
  external: ['/_/hls.min.mjs'],
  logLevel: 'warning',
  // Written below, each file replaced at once: browser tests running side by side rebuild the
  // page while others load it, and must never find it missing or half written.
  write: false,
});
const nodeOnly = Object.keys(result.metafile.inputs).filter((input) => input.startsWith('node:') || input.includes('node_modules/ws/'));
if (nodeOnly.length > 0) {
  console.error(`build-web: Node-only modules in the page bundle: ${nodeOnly.join(', ')}`);
  process.exit(1);
}
await mkdir(outdir, { recursive: true });
const names = new Set();
for (const file of result.outputFiles) {
  const name = file.path.slice(outdir.length + 1);
  names.add(name);
  const temporary = `${file.path}.${process.pid}.tmp`;
  await writeFile(temporary, file.contents);
  await rename(temporary, file.path);
}
// No stale modules left to be served (the page was once compiled file by file).
for (const name of await readdir(outdir)) {
  if (!names.has(name) && !name.endsWith('.tmp')) await rm(join(outdir, name), { recursive: true, force: true });
}
