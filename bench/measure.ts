/** What a scenario child measures about itself: the active window's time, CPU and event-loop use, and peak RSS. */
import { readFileSync } from 'node:fs';
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

/** A full garbage collection when the process runs with --expose-gc (the scenario children do), so that building the data does not bill the timed part. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * CPU seconds (user + system) of this process's children that have ended and been reaped, from
 * /proc/self/stat (cutime, cstime, in clock ticks of 1/100 s); undefined where there is no /proc.
 */
export function childrenCpuSec(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after "pid (comm) ": state is field 3, cutime 16, cstime 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return undefined;
  }
}
