/**
 * docs/observability.md lists exactly the metrics workerMetrics registers, and the Grafana dashboard
 * and the alert rules there name only those (a renamed metric would leave them silently empty).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Worker, workerMetrics } from '@oncely/core';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const doc = readFileSync(resolve(ROOT, 'docs/observability.md'), 'utf8');
const dashboard = readFileSync(resolve(ROOT, 'docs/grafana/oncely-dashboard.json'), 'utf8');

/** The names a registry shows for workerMetrics, from a worker that has not started. */
function registered(): string[] {
  const idle = {
    app: { group: 'g', topics: ['t'] },
    state: 'idle',
    on: () => () => {},
    progress: () => [],
    membership: () => ({ kind: 'static', target: [], waiting: [] }),
  } as unknown as Worker<unknown>;
  return [...workerMetrics(idle, { registry: new Registry() }).names].sort();
}

/** oncely_* names used in PromQL, without the _bucket/_count/_sum series suffixes of histograms. */
function used(text: string, histograms: Set<string>): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\boncely_[a-z_]+/g)) {
    const base = m[0].replace(/_(bucket|count|sum)$/, '');
    names.add(histograms.has(base) ? base : m[0]);
  }
  return [...names].sort();
}

describe('the observability docs', () => {
  const names = registered();
  const histograms = new Set(names.filter((n) => n.endsWith('_seconds')));

  it('list every metric workerMetrics registers, and no other', () => {
    const table = [...doc.matchAll(/^\| `(oncely_[a-z_]+)`/gm)].map((m) => m[1]!).sort();
    expect(table).toEqual(names);
  });

  it('use only registered metrics in the Grafana dashboard and the alert rules', () => {
    const exprs = (JSON.parse(dashboard) as { panels: Array<{ targets: Array<{ expr: string }> }> }).panels
      .flatMap((p) => p.targets.map((t) => t.expr))
      .join('\n');
    expect(used(exprs, histograms).length).toBeGreaterThan(8);
    for (const n of used(exprs, histograms)) expect(names).toContain(n);
    const alerts = doc.slice(doc.indexOf('## Alerts'));
    for (const n of used(alerts.slice(0, alerts.indexOf('```', alerts.indexOf('```yaml') + 7)), histograms)) {
      expect(names).toContain(n);
    }
  });
});
