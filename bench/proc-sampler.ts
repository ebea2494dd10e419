/**
 * CPU and memory of a process tree, read from Linux /proc.
 *
 * CPU = utime+stime of every live process in the tree plus cutime+cstime
 * (children that already exited and were reaped), so work done by short-lived
 * helpers is not lost. Per thread (/proc/<pid>/task/<tid>/stat): utime+stime
 * of each thread, to find the busiest one (a thread can use one core at most).
 * Memory = sum of VmRSS over the tree, sampled
 * periodically for a peak, together with the largest single-process VmHWM
 * (the kernel's own high-water mark, which catches peaks between samples).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface StatFields {
  /** pid, or the thread id when read from /proc/<pid>/task/<tid>/stat. */
  pid: number;
  /** Command name (the thread name for a task), at most 15 characters. */
  comm: string;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
  /**
   * utime + stime only: this process's (or this thread's) own CPU. For a thread, cutime and
   * cstime are the whole process's reaped children, so only these count.
   */
  ownTicks: number;
}

/**
 * Parses /proc/<pid>/stat and /proc/<pid>/task/<tid>/stat (same format); comm may contain
 * spaces and parentheses, so split after the last ')'.
 */
export function parseStat(text: string): StatFields {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error('malformed stat');
  const pid = Number.parseInt(text, 10);
  // Fields after comm start at field 3 (state); ppid is field 4, utime..cstime are 14..17.
  const f = text.slice(close + 2).split(' ');
  const num = (field: number): number => Number(f[field - 3]);
  const ownTicks = num(14) + num(15);
  return { pid, comm: text.slice(open + 1, close), ppid: num(4), ticks: ownTicks + num(16) + num(17), ownTicks };
}

export interface StatusFields {
  rssKb: number;
  hwmKb: number;
}

export function parseStatus(text: string): StatusFields {
  const kb = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

let clockTicks: number | null = null;
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100; // the Linux USER_HZ on every mainstream architecture
    }
  }
  return clockTicks;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // process exited between listing and reading
  }
}

/** Pids of root and all its descendants (root first). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readText(`/proc/${name}/stat`);
    if (stat === null) continue;
    const { pid, ppid } = parseStat(stat);
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out: number[] = [];
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

export interface TreeSample {
  atMs: number;
  cpuSeconds: number;
  rssKb: number;
  maxHwmKb: number;
  pids: number[];
}

/** One reading of the tree; `skipRoot` leaves out a wrapper (e.g. `timeout`) at the root. */
export function sampleTree(rootPid: number, skipRoot: boolean): TreeSample {
  const pids = processTree(rootPid).filter((p) => !(skipRoot && p === rootPid));
  let ticks = 0;
  let rssKb = 0;
  let maxHwmKb = 0;
  const alive: number[] = [];
  for (const pid of pids) {
    const stat = readText(`/proc/${pid}/stat`);
    const status = readText(`/proc/${pid}/status`);
    if (stat === null || status === null) continue;
    alive.push(pid);
    ticks += parseStat(stat).ticks;
    const mem = parseStatus(status);
    rssKb += mem.rssKb;
    maxHwmKb = Math.max(maxHwmKb, mem.hwmKb);
  }
  return { atMs: performance.now(), cpuSeconds: ticks / clockTicksPerSecond(), rssKb, maxHwmKb, pids: alive };
}

/** CPU use between two samples, in percent of one core. */
export function cpuPercent(a: TreeSample, b: TreeSample): number {
  const wall = (b.atMs - a.atMs) / 1000;
  return wall > 0 ? (100 * (b.cpuSeconds - a.cpuSeconds)) / wall : 0;
}

export interface ThreadTicks {
  pid: number;
  tid: number;
  comm: string;
  ticks: number;
}

/** utime+stime of every thread of the given processes, keyed `pid/tid`. */
export function sampleThreads(pids: number[]): Map<string, ThreadTicks> {
  const out = new Map<string, ThreadTicks>();
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited
    }
    for (const name of tids) {
      const stat = readText(`/proc/${pid}/task/${name}/stat`);
      if (stat === null) continue;
      const f = parseStat(stat);
      out.set(`${pid}/${f.pid}`, { pid, tid: f.pid, comm: f.comm, ticks: f.ownTicks });
    }
  }
  return out;
}

export interface ThreadCpu {
  pid: number;
  tid: number;
  comm: string;
  /** True for the process's main thread (tid = pid). */
  main: boolean;
  cpuSeconds: number;
  /** Share of one core over the window (a thread cannot exceed 100). */
  percent: number;
}

export interface ThreadUsage {
  windowS: number;
  /** Threads that used any CPU in the window, busiest first. */
  threads: ThreadCpu[];
  /** The busiest thread (null: no thread used CPU). */
  busiest: ThreadCpu | null;
  /** Sum over the threads seen at the end of the window. */
  totalCpuSeconds: number;
  /** Threads above BUSY_THREAD_PERCENT of a core: 1 means one thread did the work. */
  busyThreads: number;
}

/** A thread counts as busy above this share of a core. */
export const BUSY_THREAD_PERCENT = 10;

/**
 * Per-thread CPU between two samples. A thread that appeared during the window counts from
 * zero (all its time is inside the window); one that exited is left out (its time is still in
 * the process total of sampleTree).
 */
export function threadUsage(a: Map<string, ThreadTicks>, b: Map<string, ThreadTicks>, windowS: number): ThreadUsage {
  const hz = clockTicksPerSecond();
  const threads: ThreadCpu[] = [];
  for (const [key, end] of b) {
    const ticks = end.ticks - (a.get(key)?.ticks ?? 0);
    if (ticks <= 0) continue;
    const cpuSeconds = ticks / hz;
    threads.push({ pid: end.pid, tid: end.tid, comm: end.comm, main: end.pid === end.tid, cpuSeconds, percent: windowS > 0 ? (100 * cpuSeconds) / windowS : 0 });
  }
  threads.sort((x, y) => y.cpuSeconds - x.cpuSeconds);
  return {
    windowS,
    threads,
    busiest: threads[0] ?? null,
    totalCpuSeconds: threads.reduce((sum, t) => sum + t.cpuSeconds, 0),
    busyThreads: threads.filter((t) => t.percent > BUSY_THREAD_PERCENT).length,
  };
}

/** Samples a tree on an interval and tracks the peak summed RSS. */
export class ProcSampler {
  private timer: NodeJS.Timeout | null = null;
  peakRssKb = 0;
  peakHwmKb = 0;
  last: TreeSample | null = null;

  constructor(
    private readonly rootPid: number,
    private readonly skipRoot: boolean,
    private readonly intervalMs = 200,
  ) {}

  sample(): TreeSample {
    const s = sampleTree(this.rootPid, this.skipRoot);
    this.peakRssKb = Math.max(this.peakRssKb, s.rssKb);
    this.peakHwmKb = Math.max(this.peakHwmKb, s.maxHwmKb);
    this.last = s;
    return s;
  }

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Peak of the tree: the larger of the sampled RSS sum and any one process's VmHWM. */
  get peakKb(): number {
    return Math.max(this.peakRssKb, this.peakHwmKb);
  }
}

/** Busy CPU-seconds of the whole machine so far (all cores; /proc/stat minus idle and iowait). */
export function machineBusySeconds(): number {
  return parseMachineBusyTicks(readText('/proc/stat') ?? '') / clockTicksPerSecond();
}

/**
 * Busy ticks from the first line of /proc/stat: user nice system idle iowait irq softirq steal
 * (guest time is already inside user/nice), minus idle and iowait.
 */
export function parseMachineBusyTicks(statText: string): number {
  const f = (statText.split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
  return total - (f[3] ?? 0) - (f[4] ?? 0);
}
