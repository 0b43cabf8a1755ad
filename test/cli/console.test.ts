/**
 * `oncely ui` through the real binary against a real group (real broker, real database), over
 * HTTP: the pages show what `oncely status` shows; the rewind wizard's plan is `oncely offsets
 * reset`'s dry run; a change needs the token's session, the same origin and the form's CSRF field,
 * is audited with the actor, and the records are re-applied once; no password is ever rendered.
 * (No browser drives it here: the pages need no JavaScript, so HTTP is what a browser would do.)
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanup } from '../support/cleanup.js';
import { createTopic, databaseUrl, freshSchema, pgPool, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { freePort } from '../support/ports.js';
import { applicationCounts, FIXTURES, makeProjectionTables, oncely, producePayments, startOncely } from './support.js';

const V1 = resolve(FIXTURES, 'projection-v1.ts');
const TOKEN = 'ui-write-token-0123456789';
const SENTINEL = 'Console-Sentinel-Pw-77';

async function startConsole(env: Record<string, string>, extra: Record<string, string> = {}) {
  const port = await freePort();
  const ui = startOncely(['ui', '--port', String(port), '--refresh', '0', '--actor', 'ops'], { ...env, ...extra });
  cleanup(async () => {
    if (ui.child.exitCode === null) {
      ui.child.kill('SIGTERM');
      await ui.result;
    }
  });
  const base = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${base}/`).catch(() => undefined))?.status === 200, 'the console answers');
  return { base, ui };
}

describe('oncely ui (real binary, real broker and database)', () => {
  it('shows the group, plans a rewind like offsets reset, and executes it only with the token, same origin and CSRF', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('ui');
    const group = randomName('ui');
    expect((await oncely(['migrate', '--schema', schema])).code).toBe(0);
    const tables = await makeProjectionTables(schema);
    await producePayments(topic, 2, 20);
    const url = new URL(databaseUrl());
    url.password = SENTINEL;
    const env = { ONCELY_SCHEMA: schema, APP_SCHEMA: schema, APP_TOPIC: topic, APP_GROUP: group, DATABASE_URL: url.toString() };
    const first = await oncely(['run', V1, '--until', 'caught-up', '--no-progress'], env);
    expect(first.code, first.stderr).toBe(0);

    const { base } = await startConsole(env, { ONCELY_UI_TOKEN: TOKEN });
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${base}${path}`, { headers, redirect: 'manual' });
      const text = await r.text();
      expect(text).not.toContain(SENTINEL);
      return { status: r.status, text, headers: r.headers };
    };
    const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, ...headers },
        body: new URLSearchParams(form).toString(),
      });

    const home = await get('/');
    expect(home.text).toContain(`href="/groups/${encodeURIComponent(group)}"`);
    const groupPage = await get(`/groups/${encodeURIComponent(group)}`);
    expect(groupPage.status).toBe(200);
    expect(groupPage.text).toMatch(/id="total-lag">0</);
    expect(groupPage.text.match(/<span class="ok">owned<\/span>|no owner/g)?.length).toBe(2);
    expect((await get(`/groups/${encodeURIComponent(group)}/history`)).text).toContain('Committed batches');
    const explained = await get(`/explain?group=${encodeURIComponent(group)}&record=${encodeURIComponent(`${topic}/0/0`)}`);
    expect(explained.text).toMatch(/id="verdict">applied</);

    // The plan is the dry run of `oncely offsets reset --shift-by -5`.
    const planPath = `/groups/${encodeURIComponent(group)}/rewind?plan=1&kind=shift&value=-5`;
    const plan = await get(planPath);
    expect(plan.text).toMatch(/id="plan-summary">10 record\(s\) to reprocess, 0 to skip\. Nothing has changed yet\./);
    const dry = await oncely(['offsets', 'reset', '--group', group, '--shift-by', '-5', '--json'], env);
    expect(dry.code, dry.stderr).toBe(0);
    const dryPlan = JSON.parse(dry.stdout) as { reprocess: string; entries: Array<{ partition: number; next: string }> };
    expect(dryPlan.reprocess).toBe('10');
    for (const e of dryPlan.entries) expect(plan.text).toContain(`<td class="num">${e.next}</td>`);
    // Without a session the plan page has no execute form.
    expect(plan.text).not.toContain('Execute this plan');

    const positions = async () =>
      (await pgPool().query(`select partition, next_offset::text as n from ${schema}.partitions order by partition`)).rows;
    const before = await positions();
    const form = { kind: 'shift', value: '-5', topics: '', actor: 'alice' };
    // No session, a wrong token, another origin, no CSRF field: refused, nothing moves.
    expect((await post(`/groups/${encodeURIComponent(group)}/rewind`, form)).status).toBe(403);
    expect((await post('/login', { token: 'wrong-token-0000000' })).status).toBe(403);
    const login = await post('/login', { token: TOKEN });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    expect(login.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await post('/login', { token: TOKEN }, { origin: 'http://evil.example' })).status).toBe(403);
    expect(
      (await post(`/groups/${encodeURIComponent(group)}/rewind`, form, { cookie, origin: 'http://evil.example' })).status,
    ).toBe(403);
    expect((await post(`/groups/${encodeURIComponent(group)}/rewind`, form, { cookie })).status).toBe(403); // no CSRF
    expect(await positions()).toEqual(before);

    // With the session: the plan page carries the form; executing it moves the positions, audited.
    const withSession = await get(planPath, { cookie });
    expect(withSession.text).toContain('Execute this plan');
    const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(withSession.text)![1]!;
    const expect_ = /name="expect" value="([^"]*)"/.exec(withSession.text)![1]!;
    const done = await post(`/groups/${encodeURIComponent(group)}/rewind`, { ...form, csrf, expect: expect_ }, { cookie });
    const doneText = await done.text();
    expect(done.status, doneText).toBe(200);
    expect(doneText).toMatch(/id="result">Executed: 10 record\(s\) to reprocess, 0 skipped\./);
    expect(await positions()).toEqual(
      before.map((r: { partition: number; n: string }) => ({ ...r, n: String(BigInt(r.n) - 5n) })),
    );
    const audit = await pgPool().query(`select actor, action from ${schema}.admin_audit order by id`);
    expect(audit.rows).toEqual([{ actor: 'ui:alice', action: 'offsets.reset' }]);

    // The rewound records are applied once more, every other record once.
    const again = await oncely(['run', V1, '--until', 'caught-up', '--no-progress'], env);
    expect(again.code, again.stderr).toBe(0);
    const counts = await applicationCounts(tables.applications);
    for (const p of [0, 1]) for (let o = 0; o < 20; o++) expect(counts.get(`${p}:${o}`), `${p}:${o}`).toBe(o >= 15 ? 2 : 1);
    expect((await get('/')).text).not.toContain(SENTINEL);
  });

  it('started without a token is read-only: no session, no change', async () => {
    const schema = freshSchema('uiro');
    expect((await oncely(['migrate', '--schema', schema])).code).toBe(0);
    const { base } = await startConsole({ ONCELY_SCHEMA: schema });
    const page = await (await fetch(`${base}/login`)).text();
    expect(page).toContain('Read-only');
    const r = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
      body: 'token=anything-at-all',
      redirect: 'manual',
    });
    expect(r.status).toBe(403);
    expect(await r.text()).toContain('read-only console');
  });
});
