/**
 * The worker-thread comparison (`--server-workers 1,2`): the same scenario against the server
 * with WORKERS=1 and WORKERS=N, back to back under the same load, judged by ratios to the
 * first value (the baseline):
 * - busiest thread <= 0.6x the baseline's (capacity x1.7: the busiest thread is what saturates),
 * - total server CPU <= 1.15x (threads must not cost much more work in total),
 * - zero loss, and p99 latency <= the baseline's.
 */
import { BUSY_THREAD_PERCENT } from './proc-sampler.js';
import type { TargetResult, Verdict } from './report.js';
import type { ScenarioResult } from './scenarios.js';

export const BUSIEST_RATIO_MAX = 0.6;
export const TOTAL_RATIO_MAX = 1.15;
export const P99_RATIO_MAX = 1;
/** Server + generator + other work above this share of all cores: the figure is machine-bound. */
export const MACHINE_BOUND_SHARE = 0.8;

/** Parses the --server-workers list: `auto` or integers >= 1, no duplicates. */
export function parseServerWorkers(text: string): string[] {
  const values = text.split(',').map((x) => x.trim()).filter(Boolean);
  if (values.length === 0) throw new Error('--server-workers needs at least one value (auto or an integer >= 1), e.g. 1,2');
  for (const v of values) {
    if (v !== 'auto' && !/^[1-9]\d*$/.test(v)) throw new Error(`--server-workers: '${v}' is not auto or an integer >= 1`);
  }
  if (new Set(values).size !== values.length) throw new Error(`--server-workers: '${text}' repeats a value`);
  return values;
}

export interface WorkerFigures {
  workers: string;
  deliveredMbps: number;
  p99Ms: number;
  /** Latencies recorded (0: nothing arrived in the window). */
  latencies: number;
  missing: number;
  expected: number;
  /** Zero loss in the issue's sense: every receiver connected, nothing lost, reordered or corrupt. */
  lossless: boolean;
  cpuPercent: number;
  /** Server CPU-seconds over the window (all threads, exited ones included). */
  cpuSeconds: number;
  busiestPercent: number | null;
  busiestSeconds: number | null;
  busyThreads: number | null;
  generatorCpuPercent: number | null;
  otherCpuPercent: number | null;
}

export interface WorkerComparison {
  id: string;
  rep: number;
  baseline: WorkerFigures;
  other: WorkerFigures;
  busiestRatio: number | null;
  totalRatio: number;
  p99Ratio: number;
  /** The other run's delivered throughput over the baseline's: ~1 when the load was the same. */
  loadRatio: number;
}

function figures(r: ScenarioResult): WorkerFigures | null {
  const s = r.stream;
  if (!s || !r.server || r.serverWorkers === undefined) return null;
  const bad = s.loss.bad.corrupt + s.loss.bad.length + s.loss.bad.short;
  const threads = r.server.threads;
  return {
    workers: r.serverWorkers,
    deliveredMbps: s.deliveredMbps,
    p99Ms: s.latencyMs.p99,
    latencies: s.latencyMs.count,
    missing: s.loss.missing,
    expected: s.loss.expected,
    lossless: s.receiversConnected === s.receiversRequested && s.loss.missing === 0 && s.loss.outOfOrder === 0 && bad === 0,
    cpuPercent: r.server.cpuPercent,
    cpuSeconds: (r.server.cpuPercent / 100) * (threads?.windowS ?? s.windowS),
    busiestPercent: threads?.busiest?.percent ?? null,
    busiestSeconds: threads?.busiest?.cpuSeconds ?? null,
    busyThreads: threads?.busyThreads ?? null,
    generatorCpuPercent: r.generatorCpuPercent,
    otherCpuPercent: r.server.otherCpuPercent ?? null,
  };
}

const ratio = (a: number, b: number): number => (b > 0 ? a / b : a > 0 ? Infinity : 1);

/**
 * Pairs each stream result run with a worker count against the baseline (the first worker
 * count seen for that scenario and repetition).
 */
export function compareWorkers(results: ScenarioResult[]): WorkerComparison[] {
  const groups = new Map<string, ScenarioResult[]>();
  for (const r of results) {
    if (r.serverWorkers === undefined || !r.stream) continue;
    const key = `${r.id}#${r.rep}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: WorkerComparison[] = [];
  for (const list of groups.values()) {
    const baseline = figures(list[0]!);
    if (!baseline) continue;
    for (const r of list.slice(1)) {
      const other = figures(r)!;
      out.push({
        id: r.id,
        rep: r.rep,
        baseline,
        other,
        busiestRatio: other.busiestPercent !== null && baseline.busiestPercent !== null ? ratio(other.busiestPercent, baseline.busiestPercent) : null,
        totalRatio: ratio(other.cpuPercent, baseline.cpuPercent),
        p99Ratio: ratio(other.p99Ms, baseline.p99Ms),
        loadRatio: ratio(other.deliveredMbps, baseline.deliveredMbps),
      });
    }
  }
  return out;
}

/** Share of all cores used by server + generator + other work: near 1, the box is the limit. */
export function machineShare(f: WorkerFigures, cores: number): number {
  return (f.cpuPercent + (f.generatorCpuPercent ?? 0) + (f.otherCpuPercent ?? 0)) / (100 * cores);
}

const x = (v: number | null): string => (v === null ? '-' : Number.isFinite(v) ? `x${v.toFixed(2)}` : 'x inf');
const pct = (v: number | null): string => (v === null ? '-' : v.toFixed(1));
const sec = (v: number | null): string => (v === null ? '-' : v.toFixed(2));

/** One target per comparison and criterion; repetitions are merged by evaluateTargets. */
export function workerTargets(comparisons: WorkerComparison[]): TargetResult[] {
  const out: TargetResult[] = [];
  for (const c of comparisons) {
    const b = c.baseline;
    const o = c.other;
    const label = `(${c.id}) WORKERS=${o.workers} vs ${b.workers}`;
    const load = `same load: delivered ${o.deliveredMbps.toFixed(0)} vs ${b.deliveredMbps.toFixed(0)} Mbit/s`;
    const verdict = (ok: boolean): Verdict => (ok ? 'PASS' : 'MISS');
    if (c.busiestRatio === null) {
      out.push({ target: `${label}: busiest thread <= ${BUSIEST_RATIO_MAX}x`, verdict: 'N/A', detail: 'no per-thread figures' });
    } else {
      // One busy thread under real load: WORKERS had no effect.
      const spread = o.busyThreads !== null && o.busyThreads <= 1 && (o.busiestPercent ?? 0) >= 2 * BUSY_THREAD_PERCENT ? `; only ${o.busyThreads} thread above 10% of a core with WORKERS=${o.workers}: the server did not spread the work (does it read WORKERS?)` : '';
      out.push({
        target: `${label}: busiest thread <= ${BUSIEST_RATIO_MAX}x`,
        verdict: verdict(c.busiestRatio <= BUSIEST_RATIO_MAX),
        detail: `busiest thread ${sec(o.busiestSeconds)} s = ${pct(o.busiestPercent)}% of a core vs ${sec(b.busiestSeconds)} s = ${pct(b.busiestPercent)}% (${x(c.busiestRatio)}, capacity ${c.busiestRatio > 0 ? `x${(1 / c.busiestRatio).toFixed(2)}` : '-'}); ${load}${spread}`,
      });
    }
    out.push({
      target: `${label}: total server CPU <= ${TOTAL_RATIO_MAX}x`,
      verdict: verdict(c.totalRatio <= TOTAL_RATIO_MAX),
      detail: `${sec(o.cpuSeconds)} s = ${pct(o.cpuPercent)}% of a core vs ${sec(b.cpuSeconds)} s = ${pct(b.cpuPercent)}% (${x(c.totalRatio)}); ${load}`,
    });
    const p99Target = `${label}: p99 <= WORKERS=${b.workers}'s`;
    if (Number.isFinite(o.p99Ms) && Number.isFinite(b.p99Ms) && o.latencies > 0 && b.latencies > 0) {
      out.push({ target: p99Target, verdict: verdict(c.p99Ratio <= P99_RATIO_MAX), detail: `p99 ${o.p99Ms.toFixed(1)} vs ${b.p99Ms.toFixed(1)} ms (${x(c.p99Ratio)})` });
    } else {
      out.push({ target: p99Target, verdict: 'N/A', detail: 'no latency measured in one of the runs' });
    }
    const lossDetail = (f: WorkerFigures): string => `WORKERS=${f.workers}: ${f.missing} of ${f.expected} lost${f.lossless ? '' : ' or not connected/reordered/corrupt'}`;
    out.push({
      target: `${label}: zero loss`,
      verdict: verdict(o.lossless && b.lossless),
      detail: `${lossDetail(o)}; ${lossDetail(b)}`,
    });
  }
  return out;
}

/**
 * The side-by-side table of the comparison, with a note for every run that used most of the
 * machine (on 2 cores the load generator needs a core too). Empty without --server-workers.
 */
export function formatWorkers(results: ScenarioResult[], cores: number): string[] {
  const runs = results.filter((r) => r.serverWorkers !== undefined && r.stream);
  if (runs.length === 0) return [];
  const repeated = results.some((r) => r.rep > 1);
  const comparisons = compareWorkers(results);
  const header = ['scen', 'WORKERS', 'deliv Mbit/s', 'p99 ms', 'loss', 'srv CPU%', 'busiest thr%', 'busy thr', 'gen CPU%', 'busiest x', 'total x', 'p99 x'];
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const r of runs) {
    const f = figures(r)!;
    const c = comparisons.find((k) => k.id === r.id && k.rep === r.rep && k.other.workers === f.workers);
    const name = `${r.id}${repeated ? ` #${r.rep}` : ''}`;
    rows.push([
      name,
      f.workers,
      f.deliveredMbps.toFixed(0),
      f.p99Ms.toFixed(2),
      String(f.missing),
      pct(f.cpuPercent),
      pct(f.busiestPercent),
      f.busyThreads === null ? '-' : String(f.busyThreads),
      pct(f.generatorCpuPercent),
      c ? x(c.busiestRatio) : 'base',
      c ? x(c.totalRatio) : '',
      c ? x(c.p99Ratio) : '',
    ]);
    const share = machineShare(f, cores);
    if (share >= MACHINE_BOUND_SHARE) {
      notes.push(`${name} WORKERS=${f.workers}: server ${pct(f.cpuPercent)}% + generator ${pct(f.generatorCpuPercent)}% + other work ${pct(f.otherCpuPercent)}% = ${(share * 100).toFixed(0)}% of the ${cores} cores: machine-bound, the server's threads had no idle core to run on`);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [
    `Worker threads (server WORKERS; ratios to WORKERS=${runs[0]!.serverWorkers}; targets: busiest <= x${BUSIEST_RATIO_MAX}, total <= x${TOTAL_RATIO_MAX}, p99 <= x${P99_RATIO_MAX}, zero loss):`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    ...notes.map((n) => `  ${n}`),
    '',
  ];
}
