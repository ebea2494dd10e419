/**
 * Turns scenario results into the human table, the target verdicts and the
 * JSON document. Comparisons are ratios between results of the same run.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { ScenarioResult } from './scenarios.js';
import { compareWorkers, workerTargets } from './workers.js';

/** Other work above this share of a core during a scenario makes its numbers unreliable. */
export const NOISY_OTHER_CPU_PERCENT = 25;

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  openFilesSoftLimit: number | null;
}

export function machineInfo(): MachineInfo {
  let openFiles: number | null = null;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    openFiles = m ? Number(m[1]) : null;
  } catch {
    /* not Linux */
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    openFilesSoftLimit: openFiles,
  };
}

export type Verdict = 'PASS' | 'MISS' | 'N/A' | 'INFO';
export interface TargetResult {
  target: string;
  verdict: Verdict;
  detail: string;
}

const PROFILE_HINT = "profile the server: --server-cmd 'node --cpu-prof --cpu-prof-dir=/tmp/prof bin/ws-stream-server.js ...' (profile is written on a clean exit)";

function zeroLoss(r: ScenarioResult | undefined): { ok: boolean; detail: string } | null {
  const s = r?.stream;
  if (!r || !s) return null;
  const problems: string[] = [];
  if (s.receiversConnected < s.receiversRequested) problems.push(`${s.receiversRequested - s.receiversConnected} receivers failed to connect`);
  if (s.loss.missing > 0) problems.push(`${s.loss.missing}/${s.loss.expected} messages lost`);
  if (s.loss.outOfOrder > 0) problems.push(`${s.loss.outOfOrder} out of order`);
  const bad = s.loss.bad.corrupt + s.loss.bad.length + s.loss.bad.short;
  if (bad > 0) problems.push(`${bad} corrupt/truncated`);
  const early = Object.values(s.loss.closedEarly).reduce((a, b) => a + b, 0);
  if (early > 0) problems.push(`${early} receivers closed early (${JSON.stringify(s.loss.closedEarly)})`);
  return { ok: problems.length === 0, detail: problems.length === 0 ? `0 of ${s.loss.expected} lost` : problems.join('; ') };
}

/** Server CPU seconds spent per GB delivered: comparable across runs with different load. */
export function cpuSecondsPerGB(r: ScenarioResult): number | null {
  const s = r.stream;
  if (!s || !r.server || s.deliveredMbps <= 0) return null;
  return ((r.server.cpuPercent / 100) * 8000) / s.deliveredMbps;
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Targets that compare scenarios within one repetition of the list. */
function evaluateRep(results: ScenarioResult[]): TargetResult[] {
  const by = new Map(results.map((r) => [r.id, r]));
  const out: TargetResult[] = [];
  const add = (target: string, verdict: Verdict, detail: string): void => {
    out.push({ target, verdict, detail });
  };

  for (const id of ['a', 'a-wss', 'b', 'channels', 'mid'] as const) {
    const z = zeroLoss(by.get(id));
    if (z) add(`(${id}) zero loss`, z.ok ? 'PASS' : 'MISS', z.detail);
  }

  const e = by.get('e')?.idle;
  if (e) {
    const ok = e.rssPerReceiverKb <= 10 && e.connectFailed === 0;
    add('(e) <= 10 KiB server RSS per idle receiver', ok ? 'PASS' : 'MISS', `${e.rssPerReceiverKb.toFixed(2)} KiB/receiver over ${e.receiversConnected} receivers${e.connectFailed ? `, ${e.connectFailed} failed to connect` : ''}`);
  }

  const f = by.get('f');
  if (f?.stream) {
    const z = zeroLoss(f);
    if (z) add('(f) zero loss for the reading receivers', z.ok ? 'PASS' : 'MISS', z.detail);
    const a = by.get('a');
    if (a?.stream && a.server && f.server) {
      const ratio = f.stream.latencyMs.p99 / a.stream.latencyMs.p99;
      add('(f) p99 of the others within 10% of (a)', ratio <= 1.1 ? 'PASS' : 'MISS', `p99 ${f.stream.latencyMs.p99.toFixed(2)} vs ${a.stream.latencyMs.p99.toFixed(2)} ms (x${ratio.toFixed(2)})`);
      const grew = f.server.peakRssMb - a.server.peakRssMb;
      // Bounded = at most one receiver's send-buffer limit (16 MiB default) plus slack.
      add('(f) server RSS bounded (peak f - peak a <= 24 MiB)', grew <= 24 ? 'PASS' : 'MISS', `peak ${f.server.peakRssMb.toFixed(1)} vs ${a.server.peakRssMb.toFixed(1)} MiB (${grew >= 0 ? '+' : ''}${grew.toFixed(1)})`);
    } else {
      add('(f) p99 / RSS compared with (a)', 'N/A', 'run a and f together for the comparison');
    }
  }

  // Reference ratios against the plain-TCP twins (no target: they show what the box allows).
  for (const id of ['a', 'b'] as const) {
    const ws = by.get(id)?.stream;
    const tcp = by.get(`${id}-tcp`)?.stream;
    if (ws && tcp && tcp.latencyMs.p99 > 0) {
      add(`(${id}) latency vs its plain-TCP twin`, 'INFO', `p50 x${(ws.latencyMs.p50 / tcp.latencyMs.p50).toFixed(2)}, p99 x${(ws.latencyMs.p99 / tcp.latencyMs.p99).toFixed(2)} (ours ${ws.latencyMs.p99.toFixed(1)} ms / TCP ${tcp.latencyMs.p99.toFixed(1)} ms)`);
    }
  }
  const scaleTcp = by.get('scale-tcp')?.scale;
  if (scaleTcp) add('scale-tcp: same search over plain TCP', 'INFO', `best ${scaleTcp.best ?? 'none'}; steps: ${scaleTcp.steps.map((s) => `${s.receivers}=${s.pass ? 'ok' : s.why}`).join(', ')}`);

  const scale = by.get('scale')?.scale;
  if (scale) add('scale: largest receivers at 2 Mbit/s with zero loss, p99 < 50 ms', scale.best !== null ? 'PASS' : 'MISS', `best ${scale.best ?? 'none'}; steps: ${scale.steps.map((s) => `${s.receivers}=${s.pass ? 'ok' : s.why}`).join(', ')}`);

  const parse = by.get('g')?.parse;
  if (parse) {
    const a = by.get('a');
    // (a) is 200 receivers at 4 Mbit/s; the server's fan-out work grows with the bytes, so a
    // stream at R Mbit/s to the same receivers costs about (a) x R/4.
    const aCpu = a?.stream && a.server ? a.server.cpuPercent : undefined;
    for (const c of parse) {
      const label = `(g) ${c.container} at ${c.targetMbps} Mbit/s (actual ${c.actualMbps.toFixed(1)})`;
      const cost = `parsing adds ${c.extraCorePercent.toFixed(3)}% of a core (media path ${c.mediaCorePercent.toFixed(3)}%, opaque ${c.opaqueCorePercent.toFixed(3)}%)`;
      if (aCpu === undefined) {
        add(`${label}: parsing cost`, 'INFO', `${cost}; run (a) too for the < 5% target`);
        continue;
      }
      const serverCpu = (aCpu * c.actualMbps) / 4;
      const share = (c.extraCorePercent / serverCpu) * 100;
      add(`${label}: < 5% more server CPU than opaque`, share < 5 ? 'PASS' : 'MISS', `${cost} = ${share.toFixed(2)}% of the server CPU for that stream to (a)'s 200 receivers (${serverCpu.toFixed(2)}% of a core)`);
    }
  }

  const memory = by.get('memory')?.publishers;
  if (memory) {
    const figures = memory.map((run) => `limit ${run.limitMb === 0 ? 'none' : `${run.limitMb} MiB`}: peak RSS ${run.peakRssMb.toFixed(0)} MiB, caches ${f1(run.cacheMb, 0)} MiB (${run.publishersConnected} publishers, ${run.publishedMbps.toFixed(0)} Mbit/s in)`);
    const limited = memory.filter((run) => run.limitMb > 0 && run.cacheMb !== null);
    const within = limited.every((run) => run.cacheMb! <= run.limitMb);
    add('(memory) many opaque publishers: caches within CACHE_MEMORY_LIMIT_MB', limited.length === 0 ? 'INFO' : within ? 'PASS' : 'MISS', figures.join('; '));
  }

  for (const r of results) if (r.error) add(`(${r.id}) ran`, 'MISS', `error: ${r.error.split('\n')[0]}`);
  return out;
}

/**
 * Verdicts for the whole run. With repetitions, (c) vs (d) uses the median of the
 * per-repetition ratios (throughput on a shared 2-core box is noisy); every other target
 * must hold in every repetition. With --server-workers, every target is evaluated per worker
 * count (named `[WORKERS=n]` where the figures differ) and the worker comparison is added.
 */
export function evaluateTargets(results: ScenarioResult[]): TargetResult[] {
  const workerCounts = [...new Set(results.flatMap((r) => (r.serverWorkers === undefined ? [] : [r.serverWorkers])))];
  let out: TargetResult[];
  if (workerCounts.length === 0) {
    out = evaluateGroup(results);
  } else {
    // Results that do not depend on the server (TCP twins, g) belong to every group.
    const groups = workerCounts.map((w) => ({ w, targets: evaluateGroup(results.filter((r) => r.serverWorkers === undefined || r.serverWorkers === w)) }));
    const names = [...new Set(groups.flatMap((g) => g.targets.map((t) => t.target)))];
    out = names.flatMap((name) => {
      const hits = groups.flatMap((g) => g.targets.filter((t) => t.target === name).map((t) => ({ w: g.w, t })));
      const same = hits.length === groups.length && hits.every((h) => h.t.detail === hits[0]!.t.detail && h.t.verdict === hits[0]!.t.verdict);
      return same ? [hits[0]!.t] : hits.map((h) => ({ ...h.t, target: `${name} [WORKERS=${h.w}]` }));
    });
    out.push(...mergeReps(results, (list) => workerTargets(compareWorkers(list))));
  }
  const noisy = results.filter((r) => (r.server?.otherCpuPercent ?? 0) > NOISY_OTHER_CPU_PERCENT).map((r) => `${r.id}#${r.rep}`);
  for (const t of out) {
    if (t.verdict === 'MISS') t.detail += `; ${PROFILE_HINT}`;
    const ids = /^\(([a-z-]+)\)/.exec(t.target)?.[1];
    const hit = [...new Set(noisy.filter((n) => ids !== undefined && (n.startsWith(`${ids}#`) || (ids === 'c' && n.startsWith('d#')) || (ids === 'f' && n.startsWith('a#')))))];
    if (hit.length > 0) t.detail += ` [machine busy with other work during ${hit.join(', ')}: unreliable]`;
  }
  return out;
}

/**
 * Evaluates `evaluate` on each repetition's results and merges same-named targets: a MISS in
 * any repetition is a MISS; the details of several repetitions are joined.
 */
function mergeReps(results: ScenarioResult[], evaluate: (list: ScenarioResult[]) => TargetResult[]): TargetResult[] {
  const reps = [...new Set(results.map((r) => r.rep))].sort((a, b) => a - b);
  const perRep = reps.map((rep) => evaluate(results.filter((r) => r.rep === rep)));
  const names = [...new Set(perRep.flat().map((t) => t.target))];
  return names.map((target) => {
    const hits = perRep.map((list, i) => ({ rep: reps[i]!, t: list.find((t) => t.target === target) })).filter((x) => x.t);
    const verdicts = hits.map((h) => h.t!.verdict);
    const verdict: Verdict = verdicts.includes('MISS') ? 'MISS' : verdicts.includes('PASS') ? 'PASS' : (verdicts[0] ?? 'N/A');
    const detail = hits.length === 1 ? hits[0]!.t!.detail : hits.map((h) => `#${h.rep}: ${h.t!.detail}`).join(' | ');
    return { target, verdict, detail };
  });
}

/** The targets of one set of results (one server configuration), over all repetitions. */
function evaluateGroup(results: ScenarioResult[]): TargetResult[] {
  const reps = [...new Set(results.map((r) => r.rep))].sort((a, b) => a - b);
  const out: TargetResult[] = [];

  const pairs = reps.flatMap((rep) => {
    const c = results.find((r) => r.rep === rep && r.id === 'c');
    const d = results.find((r) => r.rep === rep && r.id === 'd');
    return c?.stream && d?.stream && d.stream.deliveredMbps > 0 ? [{ c, d }] : [];
  });
  if (pairs.length > 0) {
    const ratios = pairs.map(({ c, d }) => c.stream!.deliveredMbps / d.stream!.deliveredMbps);
    const costs = pairs.map(({ c, d }) => (cpuSecondsPerGB(c) ?? NaN) / (cpuSecondsPerGB(d) ?? NaN));
    const m = median(ratios);
    const each = pairs.map(({ c, d }, i) => `${(ratios[i]! * 100).toFixed(1)}% (${c.stream!.deliveredMbps.toFixed(0)}/${d.stream!.deliveredMbps.toFixed(0)} Mbit/s)`).join(', ');
    out.push({
      target: '(c) saturate >= 95% of plain-TCP (d), same run',
      verdict: m >= 0.95 ? 'PASS' : 'MISS',
      detail: `ours/TCP delivered = ${pairs.length > 1 ? `${(m * 100).toFixed(1)}%, median of ${each}` : each}; server CPU per GB ours/TCP = x${median(costs).toFixed(2)}`,
    });
  } else if (results.some((r) => r.id === 'c' || r.id === 'd')) {
    out.push({ target: '(c) saturate >= 95% of plain-TCP (d), same run', verdict: 'N/A', detail: 'needs both c and d in the same run' });
  }

  out.push(...mergeReps(results, evaluateRep));
  // The same scenario's spread across repetitions is the noise floor any p99 comparison lives with.
  const aP99 = results.filter((r) => r.id === 'a' && r.stream).map((r) => r.stream!.latencyMs.p99);
  const fTarget = out.find((t) => t.target.startsWith('(f) p99'));
  if (fTarget && aP99.length > 1) {
    fTarget.detail += `; noise floor: (a) alone ranged ${Math.min(...aP99).toFixed(1)}..${Math.max(...aP99).toFixed(1)} ms (x${(Math.max(...aP99) / Math.min(...aP99)).toFixed(2)}) across repetitions`;
  }
  return out;
}

const f1 = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits));

export function formatTable(results: ScenarioResult[]): string {
  const header = ['scen', 'rcv ok/asked', 'connect s', 'deliv Mbit/s', 'per-rcv', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'loss', 'srv CPU%', 'top thr%', 'srv s/GB', 'srv peak MiB', 'gen CPU%', 'other CPU%'];
  const repeated = results.some((r) => r.rep > 1);
  const rows: string[][] = [];
  const name = (r: ScenarioResult): string => `${r.id}${r.transport === 'tcp' && !r.id.endsWith('-tcp') ? ' (tcp)' : ''}${r.serverWorkers === undefined ? '' : ` W=${r.serverWorkers}`}${repeated ? ` #${r.rep}` : ''}`;
  for (const r of results) {
    const s = r.stream;
    if (s) {
      rows.push([
        name(r),
        `${s.receiversConnected}/${s.receiversRequested}`,
        f1(s.connectMs / 1000, 2),
        f1(s.deliveredMbps, 0),
        f1(s.perReceiverMbps, 2),
        f1(s.latencyMs.p50, 2),
        f1(s.latencyMs.p90, 2),
        f1(s.latencyMs.p99, 2),
        f1(s.latencyMs.max, 1),
        `${s.loss.missing}${s.loss.outOfOrder ? ` +${s.loss.outOfOrder}ooo` : ''} (${(s.loss.ratio * 100).toFixed(2)}%)`,
        f1(r.server?.cpuPercent, 0),
        f1(r.server?.threads?.busiest?.percent, 0),
        f1(cpuSecondsPerGB(r), 2),
        f1(r.server?.peakRssMb, 1),
        f1(r.generatorCpuPercent, 0),
        f1(r.server?.otherCpuPercent, 0),
      ]);
    } else if (r.idle) {
      rows.push([name(r), `${r.idle.receiversConnected}/${r.idle.receiversConnected + r.idle.connectFailed}`, f1(r.idle.connectMs / 1000, 2), '-', '-', '-', '-', '-', '-', `${f1(r.idle.rssPerReceiverKb, 2)} KiB/rcv`, f1(r.server?.cpuPercent, 0), '-', '-', f1(r.server?.peakRssMb, 1), f1(r.generatorCpuPercent, 0), '-']);
    } else if (r.scale) {
      rows.push([name(r), `best ${r.scale.best ?? 'none'}`, ...Array<string>(header.length - 2).fill('')]);
    } else if (r.publishers) {
      for (const run of r.publishers) {
        const label = `${name(r)} limit ${run.limitMb === 0 ? 'none' : run.limitMb}`;
        rows.push([label, `${run.publishersConnected}/${run.publishersAsked} pub`, '-', f1(run.publishedMbps, 0), '-', '-', '-', '-', '-', `cache ${f1(run.cacheMb, 0)} MiB`, f1(run.cpuPercent, 0), '-', '-', f1(run.peakRssMb, 1), '-', '-']);
      }
    } else if (r.parse) {
      const worst = Math.max(...r.parse.map((c) => c.extraCorePercent));
      rows.push([name(r), `parse +${worst.toFixed(3)}% core`, ...Array<string>(header.length - 2).fill('')]);
    } else {
      rows.push([name(r), r.error ? 'ERROR (see notes)' : '-', ...Array<string>(header.length - 2).fill('')]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of rows) out.push(line(row));
  return out.join('\n');
}

/** Observations worth a human's attention: server-sent errors, closes, kicked receivers. */
export function formatNotes(results: ScenarioResult[]): string[] {
  const notes: string[] = [];
  const repeated = results.some((r) => r.rep > 1);
  for (const r of results) {
    const s = r.stream;
    const id = `${r.id}${r.serverWorkers === undefined ? '' : ` W=${r.serverWorkers}`}${repeated ? ` #${r.rep}` : ''}`;
    for (const n of r.notes) notes.push(`(${id}) ${n}`);
    if (r.error) notes.push(`(${id}) error: ${r.error}`);
    for (const run of r.publishers ?? []) {
      notes.push(
        `(${id}) limit ${run.limitMb === 0 ? 'none' : `${run.limitMb} MiB`}: ${run.publishersConnected} publishers sent ${f1(run.publishedMbps, 0)} Mbit/s for ${f1(run.seconds, 1)} s; caches ${f1(run.cacheMb, 1)} MiB after ${run.trims ?? '-'} trims (${f1(run.trimmedMb, 0)} MiB dropped); server RSS ${f1(run.rssBeforeMb, 0)} -> peak ${f1(run.peakRssMb, 0)} MiB${run.closedByServer ? `; ${run.closedByServer} publishers closed by the server` : ''}${run.lateSends ? `; ${run.lateSends} late sends` : ''}`,
      );
    }
    if (r.scale) for (const st of r.scale.steps) notes.push(`(${id}) ${st.receivers} receivers: ${st.why} (p99 ${f1(st.p99Ms, 2)} ms)`);
    if (!s) continue;
    const other = r.server?.otherCpuPercent ?? 0;
    if (other > NOISY_OTHER_CPU_PERCENT) notes.push(`(${id}) UNRELIABLE: other work on the machine used ${other.toFixed(0)}% of a core during the measurement`);
    if (s.firstConnectError) notes.push(`(${id}) connect error: ${s.firstConnectError}`);
    if (Object.keys(s.receiverTexts).length > 0) notes.push(`(${id}) receivers got texts: ${JSON.stringify(s.receiverTexts)}`);
    if (s.published.serverTexts.length > 0) notes.push(`(${id}) publisher got texts: ${JSON.stringify(s.published.serverTexts)}`);
    if (s.published.closedByServer) notes.push(`(${id}) publisher was closed by the server during the run`);
    if (s.published.lateSends > 0) notes.push(`(${id}) publisher sent ${s.published.lateSends} messages late (generator overloaded?)`);
    if (!s.loss.drained) notes.push(`(${id}) receivers did not all reach the last message within the drain timeout`);
    if (s.loss.protocolErrors > 0) notes.push(`(${id}) ${s.loss.protocolErrors} WebSocket protocol errors`);
    if (r.transport === 'ws' && s.teardown.closedByServer < s.receiversConnected - s.teardown.paused.length) {
      notes.push(`(${id}) after the publisher left, ${s.teardown.closedByServer} of ${s.receiversConnected - s.teardown.paused.length} receivers got a close frame within 3 s (codes ${JSON.stringify(s.teardown.closeCodes)})`);
    }
    for (const p of s.teardown.paused) notes.push(`(${id}) paused receiver #${p.index}: close code ${p.closeCode ?? 'none'}, text ${p.errorText ?? 'none'}, ${p.okMessages} messages read after resuming`);
    notes.push(`(${id}) published ${s.published.messages} msgs at ${f1(s.published.mbps, 1)} Mbit/s over ${f1(s.windowS, 1)} s measured; max publisher backlog ${(s.published.maxBacklogBytes / 1024).toFixed(0)} KiB`);
  }
  return notes;
}
