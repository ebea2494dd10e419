// `npm test`: runs the test suite in passes and sums them up.
//   1. the whole suite on one thread (WORKERS=1: the server's default, `auto`, would depend on
//      the machine), with the ffmpeg the server would pick (FFMPEG_PATH, else the PATH's,
//      else the bundled build) and the coverage check of the tap config;
//      (in every pass, the files timed in a browser run last, one at a time: QUIET_FILES)
//   2. the files that run ffmpeg again, with FFMPEG_PATH set to the bundled build
//      (@ffmpeg-installer/ffmpeg, ffmpeg 4.1), so both a distribution's ffmpeg and ours are tested;
//   3. the files that start a server again, with WORKERS=4: every server of the suite then runs
//      on four worker threads (more than the machine's cores, on purpose). startTestServer
//      (test/helpers/server.ts) and the other helpers that start servers follow WORKERS, and a
//      CLI spawned with the tests' environment inherits it. Files that start no server (pure
//      unit tests) are not run twice: they would test the same code the same way. A file is in
//      this pass when it, or a test helper it imports, imports test/helpers/server.ts or
//      test/client/helpers.ts (which spawns the CLI); new files are picked up by that rule.
//      test/cluster/ sets its own WORKERS and is left out.
// A further pass (another setting over the whole suite, say) is one more entry in PASSES.
// TEST_PASSES=1,2 (say) runs only those passes, e.g. one CI job each; TEST_PASSES=3 the worker
// pass alone.
// Time (2 cores, 2026-12-07, fresh-clone .ci/run): pass 1 about 12 min, pass 2 about 4, pass 3 about 17: a
// server there starts four threads (seconds, against well under 1 s for one), and its files run
// two at a time like the others. The passes run one after the other, each alone on the machine:
// run side by side, the files timed against real time would measure each other's load.
// `npm test -- <tap arguments>` runs tap once with those arguments instead.
// The last line is `N passed, N failed`, summed over the passes (.ci/run shows it); the exit
// status is non-zero if any pass failed.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tap = join(root, 'node_modules', '.bin', 'tap');

/**
 * Test files that run ffmpeg, directly (samples, fixtures, read-backs) or through the server:
 * every file of test/bridge and test/media (new ones included), and these.
 */
const FFMPEG_FILES = [
  ...testFilesIn('test/bridge'),
  ...testFilesIn('test/media'),
  'test/browser/hls.test.ts',
  'test/client/cli.test.ts',
  'test/client/cli-exit-codes.test.ts',
  'test/client/cli-realtime.test.ts',
  'test/client/pacer.test.ts',
];

/**
 * Files with targets timed against real time in a real browser (a late viewer playing within
 * 3 s, latency read off the picture): each pass runs them after its other files, one at a
 * time, so that no other file's load is in their measurements (on 2 cores, a concurrent file
 * made a 0.7 s start take 3.4 s).
 */
const QUIET_FILES = testFilesIn('test/browser');

/** Every test file under test/, sorted. */
function allTestFiles(dir = 'test') {
  return readdirSync(join(root, dir), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? allTestFiles(`${dir}/${entry.name}`) : entry.name.endsWith('.test.ts') ? [`${dir}/${entry.name}`] : []))
    .sort();
}

/** Whether `file` (relative to root) imports, directly or through test helpers, one of `targets`. */
function importsAny(file, targets, seen = new Set()) {
  if (seen.has(file)) return false;
  seen.add(file);
  const text = readFileSync(join(root, file), 'utf8');
  for (const [, spec] of text.matchAll(/^import[^'"]*['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    const target = posix.join(posix.dirname(file), spec).replace(/\.js$/, '.ts');
    if (targets.includes(target)) return true;
    if (target.startsWith('test/') && existsSync(join(root, target)) && importsAny(target, targets, seen)) return true;
  }
  return false;
}

/** Test files that start a server (in-process, or the CLI with the tests' environment). */
const SERVER_FILES = allTestFiles().filter((file) => !file.startsWith('test/cluster/') && importsAny(file, ['test/helpers/server.ts', 'test/client/helpers.ts']));

function testFilesIn(dir) {
  return readdirSync(join(root, dir))
    .filter((name) => name.endsWith('.test.ts'))
    .sort()
    .map((name) => `${dir}/${name}`);
}

const bundledFfmpeg = () => createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg').path;

/**
 * Each pass: a name, environment variables added for it, the files (none: the tap config's
 * whole suite), whether tap's coverage check applies (only a whole-suite pass can meet it),
 * how many files run at once and the per-file timeout in seconds (default: the tap config's). Most files wait on real-time streams,
 * servers starting or tap's TypeScript loading rather than on the CPU, so two at a time keep the
 * whole run under 10 minutes on 2 cores (9 min 13 s measured, 2026-12-03).
 */
const PASSES = [
  { name: 'all tests', env: { WORKERS: '1' }, files: [], coverage: true, jobs: 2 },
  { name: 'ffmpeg users, bundled ffmpeg', env: { WORKERS: '1', FFMPEG_PATH: bundledFfmpeg() }, files: FFMPEG_FILES, coverage: false, jobs: 2 },
  // Each server starts four threads (seconds under tap, against well under 1 s for one): a file
  // takes several times its single-thread run, hence the longer per-file timeout. 46 of the 69
  // files; two at a time.
  { name: 'servers on worker threads (WORKERS=4)', env: { WORKERS: '4' }, files: SERVER_FILES, coverage: false, jobs: 2, timeout: 180 },
];

/** `ffmpeg version …` of the ffmpeg a pass runs: the one the server and the tests find (pretest built dist/). */
async function ffmpegOf(env) {
  const { findFfmpeg } = await import('../dist/src/bridge/ffmpeg.js');
  const found = findFfmpeg(env);
  if (found === undefined) return 'no ffmpeg found';
  try {
    const first = execFileSync(found.path, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0];
    return `${first.replace(/ (Copyright|https?:).*$/, '')}: ${found.path} (${found.source})`;
  } catch {
    return `${found.path} (${found.source}) does not run`;
  }
}

/** Runs tap with `args`, its output passed through; resolves with its counts and exit status. */
function runTap(args, env) {
  return new Promise((resolve) => {
    const child = spawn(tap, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    // Failed test points, with the file and subtests they are in, for the summary: a CI log
    // is often shown by its end only.
    const failures = [];
    const path = [];
    let partial = '';
    child.stdout.on('data', (data) => {
      process.stdout.write(data);
      tail = (tail + data.toString()).slice(-4096);
      const lines = (partial + data.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const depth = (/^ */.exec(line)?.[0].length ?? 0) / 4;
        const subtest = /^\s*# Subtest: (.*)$/.exec(line);
        if (subtest) path.splice(depth, Infinity, subtest[1]);
        const failed = /^\s*not ok \d+ - (.*?)(?: # time=.*)?$/.exec(line);
        if (!failed) continue;
        const where = [...path.slice(0, depth), failed[1]].join(' > ');
        // A failed subtest is listed through its failed points, unless it has none (timed out, crashed).
        if (path[depth] !== failed[1] || !failures.some((failure) => failure.startsWith(`${where} > `))) failures.push(where);
      }
    });
    child.on('close', (code, signal) => {
      // tap's closing line: `# { total: N, pass: N, fail: N, … }`.
      const summary = [...tail.matchAll(/^# \{ total: (\d+)(.*)\}$/gm)].at(-1);
      const count = (name) => Number(new RegExp(`\\b${name}: (\\d+)`).exec(summary?.[2] ?? '')?.[1] ?? 0);
      resolve({ failures, found: summary !== undefined, pass: count('pass'), fail: count('fail'), status: code ?? 1, signal });
    });
  });
}

/** Adds the counts of a second tap run of the same pass to `total`. */
function addUp(total, more) {
  total.failures.push(...more.failures);
  total.found &&= more.found;
  total.pass += more.pass;
  total.fail += more.fail;
  if (total.status === 0) total.status = more.status;
  total.signal ??= more.signal;
}

const extra = process.argv.slice(2);
if (extra.length > 0) {
  const result = await runTap(extra, { WORKERS: process.env.WORKERS ?? '1' });
  process.exit(result.status);
}

const results = [];
// TEST_PASSES=1,2 (or 3): only those passes, e.g. one CI job each.
const chosen = (process.env.TEST_PASSES ?? '').split(',').map((part) => part.trim()).filter((part) => part !== '');
const unknown = chosen.filter((number) => !/^\d+$/.test(number) || Number(number) < 1 || Number(number) > PASSES.length);
if (unknown.length > 0) {
  console.error(`TEST_PASSES: ${unknown.join(', ')} is not a pass number (1 to ${PASSES.length})`);
  process.exit(2);
}
for (const [index, pass] of PASSES.entries()) {
  if (chosen.length > 0 && !chosen.includes(String(index + 1))) continue;
  console.log(`\n=== pass ${index + 1}/${PASSES.length}: ${pass.name}: ${await ffmpegOf({ ...process.env, ...pass.env })}`);
  const started = Date.now();
  const files = pass.files.length > 0 ? pass.files : allTestFiles();
  const timeout = pass.timeout === undefined ? [] : [`--timeout=${pass.timeout}`];
  const coverage = pass.coverage ? [] : ['--disable-coverage'];
  const jobs = pass.jobs === undefined ? [] : [`--jobs=${pass.jobs}`];
  const result = await runTap([...coverage, ...timeout, ...jobs, ...files.filter((file) => !QUIET_FILES.includes(file))], pass.env);
  const quiet = files.filter((file) => QUIET_FILES.includes(file));
  if (quiet.length > 0) {
    console.log(`\n=== pass ${index + 1}: ${quiet.length} files timed in a browser, one at a time`);
    // Coverage is the whole-suite run's check: a few files alone would fall short of it.
    addUp(result, await runTap(['--disable-coverage', ...timeout, '--jobs=1', ...quiet], pass.env));
  }
  results.push({ pass, result, seconds: Math.round((Date.now() - started) / 1000) });
}

console.log('\n=== summary');
let passed = 0;
let failed = 0;
for (const { pass, result, seconds } of results) {
  passed += result.pass;
  // A pass that ended without its summary (crashed, killed) counts as one failure.
  failed += result.found ? result.fail : Math.max(result.fail, 1);
  const why = result.status === 0 ? 'ok' : `FAILED (tap exit ${result.signal ?? result.status}${result.found && result.fail === 0 ? ', e.g. coverage below the threshold' : ''})`;
  console.log(`${pass.name}: ${result.pass} passed, ${result.fail} failed, ${seconds} s: ${why}`);
  for (const failure of result.failures.slice(0, 20)) console.log(`  not ok: ${failure}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(results.every(({ result }) => result.status === 0) ? 0 : 1);
