/** What a scenario child measures about itself: the active window's time, CPU and event-loop use, and peak RSS. */
import { readFileSync } from 'node:fs';
import { constants, PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

export interface Window {
  activeMs: number;
  cpuSec: number;
  /** Of cpuSec, the kernel's (system time: the sockets, page faults). */
  systemSec?: number;
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
      systemSec: cpu.system / 1e6,
      elu: performance.eventLoopUtilization(elu0).utilization,
    };
  };
}

/** Peak resident set size of this process so far, in MiB (Linux reports maxRSS in KiB). */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * What the process's memory was made of at the sample with the highest RSS, in MiB: the V8 heap
 * (committed, by space, and used), the memory V8 counts outside its heap (external, of which
 * ArrayBuffers: Buffers' bytes), and the rest of the resident set (code, libraries, native
 * allocations, freed memory not yet returned).
 */
export interface MemoryAtPeak {
  rssMb: number;
  heapTotalMb: number;
  heapUsedMb: number;
  /** Committed size of the young generation's semi-spaces (new_space) and of the old generation (old_space). */
  newSpaceMb: number;
  oldSpaceMb: number;
  /** Large objects (old and young generation), code, and every other space, committed. */
  largeObjectMb: number;
  otherSpacesMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  /** rss − heapTotal − external: outside what V8 accounts for. */
  restMb: number;
  /** How many samples were taken (one per interval over the whole process). */
  samples: number;
  /** Garbage collections over the whole process: scavenges (young generation) and the others (mark-compact), with their pause time. */
  gc: { scavenges: number; scavengeMs: number; majors: number; majorMs: number };
}

const MB = 1024 * 1024;

/**
 * Samples process.memoryUsage() and the V8 heap spaces every `intervalMs` (unref'd timer) and keeps
 * the sample with the highest RSS. The peak between two samples can be higher (maxRSS is the
 * kernel's exact figure); the breakdown says what it was made of at the closest sample.
 */
export function sampleMemory(intervalMs = 100): () => MemoryAtPeak {
  let peak: MemoryAtPeak | undefined;
  let samples = 0;
  const gc = { scavenges: 0, scavengeMs: 0, majors: 0, majorMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = ((e as { detail?: unknown }).detail as { kind?: number } | null | undefined)?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.scavenges++;
        gc.scavengeMs += e.duration;
      } else {
        gc.majors++;
        gc.majorMs += e.duration;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const take = () => {
    samples++;
    const m = process.memoryUsage();
    if (peak && m.rss / MB <= peak.rssMb) return;
    let newSpace = 0;
    let oldSpace = 0;
    let large = 0;
    let other = 0;
    for (const s of getHeapSpaceStatistics()) {
      const size = s.space_size / MB;
      if (s.space_name === 'new_space') newSpace += size;
      else if (s.space_name === 'old_space') oldSpace += size;
      else if (s.space_name.includes('large_object')) large += size;
      else other += size;
    }
    peak = {
      rssMb: m.rss / MB,
      heapTotalMb: m.heapTotal / MB,
      heapUsedMb: m.heapUsed / MB,
      newSpaceMb: newSpace,
      oldSpaceMb: oldSpace,
      largeObjectMb: large,
      otherSpacesMb: other,
      externalMb: m.external / MB,
      arrayBuffersMb: m.arrayBuffers / MB,
      restMb: (m.rss - m.heapTotal - m.external) / MB,
      samples: 0,
      gc,
    };
  };
  take();
  const timer = setInterval(take, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    take();
    observer.disconnect();
    return { ...peak!, samples, gc: { ...gc } };
  };
}

/** One line: what the RSS was made of at the sample with the most. */
export function describeMemory(m: MemoryAtPeak): string {
  const r = (x: number) => Math.round(x);
  return (
    `at its highest sample ${r(m.rssMb)} MB: heap ${r(m.heapTotalMb)} (new ${r(m.newSpaceMb)}, old ${r(m.oldSpaceMb)}, ` +
    `large ${r(m.largeObjectMb)}, other ${r(m.otherSpacesMb)}; used ${r(m.heapUsedMb)}), external ${r(m.externalMb)} ` +
    `(buffers ${r(m.arrayBuffersMb)}), rest ${r(m.restMb)}; GC: ${m.gc.scavenges} scavenges (${r(m.gc.scavengeMs)} ms), ` +
    `${m.gc.majors} other (${r(m.gc.majorMs)} ms)`
  );
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
