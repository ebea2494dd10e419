import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

const MiB = 1024 * 1024;

/**
 * CACHE_MEMORY_LIMIT_MB in bytes. `auto` is the smaller of 1 GiB and a quarter of the memory
 * the process may use: the machine's RAM, or the cgroup v2 limit when one is set (containers).
 */
export function cacheMemoryLimitBytes(setting: number | 'auto', memory: number = availableMemory()): number {
  if (setting !== 'auto') return Math.floor(setting * MiB);
  return Math.floor(Math.min(1024 * MiB, memory / 4));
}

function availableMemory(): number {
  const ram = totalmem();
  try {
    const limit = Number(readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim());
    return Number.isFinite(limit) && limit > 0 ? Math.min(ram, limit) : ram;
  } catch {
    return ram;
  }
}
