/** What a scenario child measures about itself: the active window's time, CPU and event-loop use, and peak RSS. */
import { performance } from 'node:perf_hooks';

export interface Window {
  activeMs: number;
  cpuSec: number;
  elu: number;
}

/** Starts a measurement window; call the returned function at its end. */
export function startWindow(): () => Window {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    return {
      activeMs: performance.now() - t0,
      cpuSec: (cpu.user + cpu.system) / 1e6,
      elu: performance.eventLoopUtilization(elu0).utilization,
    };
  };
}

/** Peak resident set size of this process so far, in MiB (Linux reports maxRSS in KiB). */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** A short random suffix for fresh group, schema and table names. */
export function suffix(): string {
  return Math.random().toString(36).slice(2, 8);
}
