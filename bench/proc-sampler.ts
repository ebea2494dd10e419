/**
 * CPU and memory of a process tree, read from Linux /proc.
 *
 * CPU = utime+stime of every live process in the tree plus cutime+cstime
 * (children that already exited and were reaped), so work done by short-lived
 * helpers is not lost. Memory = sum of VmRSS over the tree, sampled
 * periodically for a peak, together with the largest single-process VmHWM
 * (the kernel's own high-water mark, which catches peaks between samples).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface StatFields {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

/** Parses /proc/<pid>/stat; comm may contain spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): StatFields {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('malformed stat');
  const pid = Number.parseInt(text, 10);
  // Fields after comm start at field 3 (state); ppid is field 4, utime..cstime are 14..17.
  const f = text.slice(close + 2).split(' ');
  const num = (field: number): number => Number(f[field - 3]);
  return { pid, ppid: num(4), ticks: num(14) + num(15) + num(16) + num(17) };
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
