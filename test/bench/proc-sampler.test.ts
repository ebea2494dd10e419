import t from 'tap';
import { Worker } from 'node:worker_threads';
import { clockTicksPerSecond, cpuPercent, parseMachineBusyTicks, parseStat, parseStatus, processTree, sampleThreads, sampleTree, threadUsage, type ThreadTicks } from '../../bench/proc-sampler.js';

t.test('parseStat handles spaces and parentheses in comm', async (t) => {
  // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
  const line = '4242 (node (a) b) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 11 0 123 456 789';
  t.same(parseStat(line), { pid: 4242, comm: 'node (a) b', ppid: 17, ticks: 250 + 50 + 7 + 3, ownTicks: 250 + 50 });
  t.throws(() => parseStat('garbage'));
});

t.test('parseStat reads a thread stat: name and own CPU without the process-wide children', async (t) => {
  // /proc/<pid>/task/<tid>/stat: cutime/cstime (here 900 and 100) belong to the whole process.
  const line = '4250 (WorkerThread 1) R 17 4242 4242 0 -1 4194368 80 0 0 0 411 29 900 100 20 0 11 0 130 456 789';
  const f = parseStat(line);
  t.equal(f.pid, 4250);
  t.equal(f.comm, 'WorkerThread 1');
  t.equal(f.ownTicks, 440);
});

t.test('threadUsage: busiest thread, total, new and exited threads', async (t) => {
  const hz = clockTicksPerSecond();
  const tick = (pid: number, tid: number, ticks: number): [string, ThreadTicks] => [`${pid}/${tid}`, { pid, tid, comm: tid === pid ? 'node' : 'worker', ticks }];
  const a = new Map([tick(10, 10, 100), tick(10, 11, 50), tick(10, 12, 7), tick(10, 13, 40)]);
  // 2 s window: main +1.0 s, 11 +0.4 s, 12 idle, 13 exited, 14 born during the window with 0.3 s.
  const b = new Map([tick(10, 10, 100 + hz), tick(10, 11, 50 + 0.4 * hz), tick(10, 12, 7), tick(10, 14, 0.3 * hz)]);
  const u = threadUsage(a, b, 2);
  t.equal(u.threads.length, 3, 'idle and exited threads are left out');
  t.same(u.threads.map((x) => x.tid), [10, 11, 14], 'busiest first');
  t.same(u.busiest && { tid: u.busiest.tid, main: u.busiest.main, percent: u.busiest.percent }, { tid: 10, main: true, percent: 50 });
  t.equal(u.threads[1]!.main, false);
  t.ok(Math.abs(u.totalCpuSeconds - 1.7) < 1e-9);
  t.equal(u.busyThreads, 3, '0.3 s of 2 s is above 10% of a core');
  t.equal(threadUsage(a, new Map([tick(10, 10, 100 + 0.2 * hz)]), 2).busyThreads, 0, '10% is not above 10%');
  const none = threadUsage(a, a, 2);
  t.equal(none.busiest, null);
  t.equal(none.totalCpuSeconds, 0);
});

t.test('samples the threads of this process from /proc', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  // The worker spins (CPU work, not wall time), reports, then stays alive until told to go.
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     let x = 0; for (let i = 0; i < 3e8; i++) x += i & 1;
     parentPort.postMessage(x); parentPort.once('message', () => process.exit(0));`,
    { eval: true },
  );
  const a = sampleThreads([process.pid]);
  t.ok(a.has(`${process.pid}/${process.pid}`), 'the main thread is listed');
  t.ok(a.size > 1, 'node runs more than one thread');
  const started = performance.now();
  await new Promise((resolve) => worker.once('message', resolve));
  const b = sampleThreads([process.pid]);
  const u = threadUsage(a, b, (performance.now() - started) / 1000);
  worker.postMessage('exit');
  await new Promise((resolve) => worker.once('exit', resolve));
  t.ok(u.busiest !== null && !u.busiest.main, 'the spinning worker thread is the busiest, not the waiting main thread');
  t.ok(u.busiest!.cpuSeconds >= 0.05, `the worker thread used ${u.busiest!.cpuSeconds} s`);
  t.equal(u.busiest!.pid, process.pid);
t.same(sampleThreads([2 ** 22 + 1]).size, 0, 'a pid that does not exist gives no threads');
});

t.test('parseStatus reads VmRSS and VmHWM in kB', async (t) => {
  const text = 'Name:\tnode\nVmPeak:\t  999 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\nThreads:\t7\n';
  t.same(parseStatus(text), { rssKb: 40000, hwmKb: 51234 });
  t.same(parseStatus('Name:\tkthread\n'), { rssKb: 0, hwmKb: 0 }, 'kernel threads have no Vm lines');
});

t.test('samples this process from /proc', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  t.equal(processTree(process.pid)[0], process.pid);
  const a = sampleTree(process.pid, false);
  t.ok(a.pids.includes(process.pid));
  t.ok(a.rssKb > 1000, 'a node process has more than 1 MB resident');
  t.ok(a.maxHwmKb >= a.rssKb || a.pids.length > 1, 'HWM is at least the current RSS');
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
  const b = sampleTree(process.pid, false);
  t.ok(x > 0 && b.cpuSeconds >= a.cpuSeconds, 'cpu time never decreases');
  t.ok(cpuPercent(a, b) >= 0);
  t.same(sampleTree(process.pid, true).pids.includes(process.pid), false, 'skipRoot leaves the root out');
});

t.test('machine busy ticks leave out idle and iowait', async (t) => {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const stat = 'cpu  100 5 50 1000 20 1 2 3 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n';
  t.equal(parseMachineBusyTicks(stat), 100 + 5 + 50 + 1 + 2 + 3, 'guest is not counted twice');
  t.equal(parseMachineBusyTicks(''), 0);
});
