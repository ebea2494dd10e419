import t from 'tap';
import { cpuPercent, parseMachineBusyTicks, parseStat, parseStatus, processTree, sampleTree } from '../../bench/proc-sampler.js';

t.test('parseStat handles spaces and parentheses in comm', async (t) => {
  // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
  const line = '4242 (node (a) b) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 11 0 123 456 789';
  t.same(parseStat(line), { pid: 4242, ppid: 17, ticks: 250 + 50 + 7 + 3 });
  t.throws(() => parseStat('garbage'));
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
