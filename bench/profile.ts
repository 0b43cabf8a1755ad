/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`): self time per function and per area of the
 * code (oncely's wire decode, runtime, store; knex; the pg driver; kafkajs; GC; idle), so a report
 * can say where an oncely worker's main thread spends its time.
 */
import { readFileSync } from 'node:fs';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Self time by area, largest first. */
  areas: Array<{ area: string; ms: number; share: number }>;
  /** Self time of the busiest functions. */
  functions: Array<{ fn: string; area: string; ms: number; share: number }>;
}

const AREAS: Array<[RegExp, string]> = [
  [/packages\/core\/(?:src|dist)\/kafka(?:js)?\/wire/, 'oncely: wire decode'],
  [/packages\/core\/(?:src|dist)\/(?:kafka|kafkajs|reader)\//, 'oncely: reader'],
  [/packages\/core\/(?:src|dist)\/runtime\//, 'oncely: runtime'],
  [/packages\/core\/(?:src|dist)\/codec\//, 'oncely: codec'],
  [/packages\/core\/(?:src|dist)\//, 'oncely: core other'],
  [/packages\/postgres-offsets\/(?:src|dist)\/bulk\//, 'oncely: insertRows'],
  [/packages\/postgres-offsets\//, 'oncely: store'],
  [/node_modules\/.*\/knex\//, 'knex'],
  [/node_modules\/.*\/(pg|pg-protocol|pg-pool|pg-types|pgpass|postgres-[a-z]+)\//, 'pg driver'],
  [/node_modules\/.*\/kafkajs\//, 'kafkajs'],
  [/node_modules\/.*\/(tarn|debug|inversify|reflect-metadata)/, 'other libraries'],
  [/\/bench\//, 'bench (handler, wrappers)'],
  [/^node:/, 'node core'],
];

function areaOf(functionName: string, url: string): string {
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(garbage collector)') return '(garbage collector)';
  if (functionName === '(program)') return '(program: V8/native)';
  for (const [re, area] of AREAS) if (re.test(url)) return area;
  return url ? 'other JS' : 'builtins (JSON, Buffer, …)';
}

function shortUrl(url: string): string {
  const m = /(packages\/.*|node_modules\/\.pnpm\/[^/]+\/node_modules\/.*|bench\/.*|node:.*)$/.exec(url);
  return (m?.[1] ?? url).replace(/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '');
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<number, number>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
    totalUs += dt;
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { area: string; us: number }>();
  for (const [id, us] of self) {
    const cf = byId.get(id)!;
    const area = areaOf(cf.functionName, cf.url);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const name = `${cf.functionName || '(anonymous)'}${cf.url ? ` ${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ''}`;
    const f = fns.get(name);
    if (f) f.us += us;
    else fns.set(name, { area, us });
  }
  const share = (us: number) => (totalUs > 0 ? us / totalUs : 0);
  return {
    file,
    totalMs: totalUs / 1000,
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, ms: us / 1000, share: share(us) })),
    functions: [...fns]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([fn, f]) => ({ fn, area: f.area, ms: f.us / 1000, share: share(f.us) })),
  };
}
