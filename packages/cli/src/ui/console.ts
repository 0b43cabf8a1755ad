/**
 * The operator console: server-rendered pages over the same admin API as the CLI (positions, lag,
 * workers, the offset log and the audit, dead letters, checkpoints, one record's history) and a
 * rewind wizard that shows its plan before it executes, with the engine of `oncely offsets reset`.
 *
 * Safety: read-only unless a write token is configured. Every change is a POST that needs a session
 * (an HttpOnly, SameSite=Strict cookie set by typing the token at /login), a same-origin Origin (or
 * Referer), and the form's CSRF field; every change is audited with the actor. No connection
 * string, password or SASL setting is ever rendered. Pages need no JavaScript.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type App, ConfigError, OncelyError, toError } from '@oncely/core';
import type { DeadLetters, OffsetsAdmin, PartitionStatus, ResetPlan, ResetRequest } from '@oncely/postgres-offsets';
import type { Knex } from 'knex';
import { showBytes } from '../commands/dlq.js';
import { inKafka, parseRecordRef } from '../commands/explain.js';
import { PLAN_COLUMNS, planRows, type ResetFlags, resetTarget } from '../commands/offsets.js';
import { workerStateText, workerWeight } from '../commands/status.js';
import { parseBigint, parseTopics } from '../options.js';
import { human } from '../output.js';
import { Html, html, page, sparkline, table } from './html.js';

/** What the console works with. */
export interface ConsoleOptions {
  admin: OffsetsAdmin;
  deadLetters: DeadLetters;
  /** The write token; without it the console is read-only. */
  token?: string;
  /** Recorded in admin_audit (prefixed `ui:`), unless the operator types a name in a form. */
  actor: string;
  /** The app module, for requeuing dead letters with its current handler (optional). */
  app?: App<Knex.Transaction>;
  /** Seconds between refreshes of the live pages (0: never). Default 5. */
  refreshSeconds?: number;
}

const SESSION_COOKIE = 'oncely_ui_session';
const TARGET_KINDS = ['offset', 'earliest', 'latest', 'datetime', 'duration', 'shift', 'checkpoint', 'time-of-commit'] as const;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const mac = (token: string, what: string) => createHmac('sha256', token).update(what).digest('hex');

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), decodeURIComponent(part.slice(i + 1).trim()));
  }
  return out;
}

async function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) throw new HttpError(415, 'a form post is expected');
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 64 * 1024) throw new HttpError(413, 'form too large');
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The request's own origin: an Origin (or, without one, a Referer) from another origin is refused. */
function sameOrigin(req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (!host) return false;
  const origin = req.headers.origin ?? (req.headers.referer ? new URL(req.headers.referer).origin : undefined);
  if (!origin) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function statusCell(r: PartitionStatus): Html {
  if (r.stopped) return html`<span class="bad">stopped at ${r.stopped.offset}</span>`;
  if (r.owner === null) return html`<span class="warn">${r.nextOffset === null ? 'no owner (never claimed)' : 'no owner'}</span>`;
  if (r.leaseLeftMs === 0) return html`<span class="warn">lease expired</span>`;
  return html`<span class="ok">owned</span>`;
}

/** A handler for Node's http server: `(req, res) => Promise<void>`. */
export function consoleHandler(options: ConsoleOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { admin, deadLetters, token } = options;
  const refresh = options.refreshSeconds ?? 5;
  const writable = token !== undefined && token !== '';
  const session = writable ? mac(token, 'session') : '';
  const csrf = writable ? mac(token, 'csrf') : '';
  const lagHistory = new Map<string, number[]>();

  const hasSession = (req: IncomingMessage) => writable && same(cookies(req).get(SESSION_COOKIE) ?? '', session);
  const csrfField = (req: IncomingMessage) =>
    hasSession(req) ? html`<input type="hidden" name="csrf" value="${csrf}">` : html``;
  const frame = (req: IncomingMessage, title: string, body: Html, extra: { group?: string; refresh?: boolean } = {}) =>
    page(title, body, {
      writable: hasSession(req),
      group: extra.group,
      refreshSeconds: extra.refresh && refresh > 0 ? refresh : undefined,
    });
  const writeHint = (req: IncomingMessage) =>
    hasSession(req)
      ? html``
      : writable
        ? html`<p class="note">Changes need a session: <a href="/login">enter the write token</a>.</p>`
        : html`<p class="note">This console is read-only (started without <code>ONCELY_UI_TOKEN</code>).</p>`;

  /** Checks a change request: writable, a session, same origin, the CSRF field. Returns the form. */
  async function authorize(req: IncomingMessage): Promise<URLSearchParams> {
    if (!writable) throw new HttpError(403, 'read-only console: start oncely ui with ONCELY_UI_TOKEN to allow changes');
    if (!sameOrigin(req)) throw new HttpError(403, 'refused: the request does not come from this console (Origin/Referer)');
    const form = await formBody(req);
    if (!hasSession(req)) throw new HttpError(403, 'refused: no session; enter the write token at /login');
    if (!same(form.get('csrf') ?? '', csrf)) throw new HttpError(403, 'refused: the form is not one of this console (CSRF)');
    return form;
  }
  const actorOf = (form: URLSearchParams) => {
    const typed = (form.get('actor') ?? '').trim();
    return `ui:${typed !== '' ? typed.slice(0, 100) : options.actor}`;
  };

  async function groups(req: IncomingMessage): Promise<Html> {
    const rows = await admin.status();
    const byGroup = new Map<string, PartitionStatus[]>();
    for (const r of rows) byGroup.set(r.group, [...(byGroup.get(r.group) ?? []), r]);
    const list = [...byGroup.entries()].sort(([a], [b]) => a.localeCompare(b));
    const body = html`<h1>Groups</h1>${
      list.length === 0
        ? html`<p>No stored positions yet: has a worker run against this schema?</p>`
        : table(
            ['Group', 'Partitions', 'Total lag', 'Without live owner', 'Stopped', 'Dead letters'],
            list.map(([g, ps]) => [
              html`<a href="/groups/${encodeURIComponent(g)}">${g}</a>`,
              ps.length,
              ps.some((p) => p.lag === null) ? 'unknown' : ps.reduce((a, p) => a + (p.lag ?? 0n), 0n),
              ps.filter((p) => p.owner === null || p.leaseLeftMs === 0).length,
              ps.filter((p) => p.stopped).length,
              ps.reduce((a, p) => a + p.deadLetters, 0),
            ]),
            [1, 2, 3, 4, 5],
          )
    }`;
    return frame(req, 'Groups', body, { refresh: true });
  }

  async function group(req: IncomingMessage, g: string): Promise<Html> {
    const [rows, workers] = await Promise.all([admin.status({ group: g }), admin.workers({ group: g })]);
    if (rows.length === 0 && workers.length === 0) throw new HttpError(404, `no group ${g} in this schema`);
    const known = rows.every((r) => r.lag !== null);
    const total = rows.reduce((a, r) => a + Number(r.lag ?? 0n), 0);
    const history = lagHistory.get(g) ?? [];
    if (known) {
      history.push(total);
      if (history.length > 60) history.shift();
      lagHistory.set(g, history);
    }
    const body = html`<h1>Group ${g}</h1>
<p>Total lag <strong id="total-lag">${known ? total : 'unknown (Kafka not reached)'}</strong> ${sparkline(history, `total lag of the last ${history.length} refreshes`)}</p>
<h2>Workers</h2>${
      workers.length === 0
        ? html`<p class="muted">No registered workers (static workers register only with elastic membership).</p>`
        : table(
            ['Worker', 'Host', 'PID', 'Membership', 'State', 'Heartbeat', 'Owned', 'Held', 'Target', 'Weight'],
            workers.map((w) => [
              w.workerId,
              w.host,
              w.pid,
              w.membership,
              workerStateText(w),
              `${human(w.heartbeatAgeMs)} ago`,
              w.owned,
              w.held,
              w.target,
              workerWeight(w),
            ]),
            [2, 6, 7, 8, 9],
          )
    }
<h2>Partitions</h2>${table(
      [
        'Topic',
        'Partition',
        'Next offset',
        'High watermark',
        'Lag',
        'Owner',
        'Epoch',
        'Lease left',
        'Last commit',
        'State',
        'Dead letters',
      ],
      rows.map((r) => [
        r.topic,
        r.partition,
        r.nextOffset,
        r.highWatermark,
        r.lag,
        r.owner ?? '-',
        r.epoch,
        r.owner === null ? '-' : r.leaseLeftMs === 0 ? 'expired' : human(r.leaseLeftMs),
        r.lastCommitAgeMs === null ? 'never' : `${human(r.lastCommitAgeMs)} ago`,
        statusCell(r),
        r.deadLetters > 0
          ? html`<a href="/groups/${encodeURIComponent(g)}/dlq?topic=${encodeURIComponent(r.topic)}">${r.deadLetters}</a>`
          : 0,
      ]),
      [1, 2, 3, 4, 6, 10],
    )}
${rows.filter((r) => r.stopped).map((r) => html`<p class="error">${r.topic}/${r.partition} stopped at ${r.stopped!.offset}: ${r.stopped!.error}</p>`)}`;
    return frame(req, `Group ${g}`, body, { group: g, refresh: true });
  }

  async function history(req: IncomingMessage, g: string): Promise<Html> {
    const [log, audit] = await Promise.all([
      admin.offsetHistory({ group: g, limit: 200 }),
      admin.auditLog({ group: g, limit: 200 }),
    ]);
    const body = html`<h1>Offset log and audit of ${g}</h1>
<h2 id="audit">Admin audit</h2>${table(
      ['ID', 'At', 'Actor', 'Action', 'Details'],
      audit.map((a) => [
        html`<span id="audit-${a.id}">${a.id}</span>`,
        a.at.toISOString(),
        a.actor,
        a.action,
        html`<code>${JSON.stringify(a.details)}</code>`,
      ]),
      [0],
    )}
<h2>Committed batches (newest first)</h2>${table(
      ['ID', 'Committed', 'Topic', 'Partition', 'From', 'To', 'Records', 'Epoch', 'Worker'],
      log.map((o) => [
        o.id,
        o.committedAt.toISOString(),
        o.topic,
        o.partition,
        o.fromOffset,
        o.toOffset,
        o.recordCount,
        o.epoch,
        o.workerId,
      ]),
      [0, 3, 4, 5, 6, 7],
    )}`;
    return frame(req, `History of ${g}`, body, { group: g });
  }

  async function dlqList(req: IncomingMessage, g: string, url: URL): Promise<Html> {
    const topic = url.searchParams.get('topic') || undefined;
    const all = url.searchParams.get('all') === '1';
    const rows = await deadLetters.list({ group: g, topic, includeReplayed: all }, { limit: 500 });
    const body = html`<h1>Dead letters of ${g}</h1>
<form method="get"><label for="topic">Topic</label><input id="topic" name="topic" value="${topic ?? ''}">
<label><input type="checkbox" name="all" value="1" ${all ? new Html('checked') : ''}> include requeued ones</label> <button>Filter</button></form>
${
  rows.length === 0
    ? html`<p>No dead letters${topic ? html` for ${topic}` : ''}.</p>`
    : table(
        ['ID', 'Record', 'Attempts', 'Last failure', 'Error', 'State'],
        rows.map((d) => [
          html`<a href="/dlq/${d.id}">${d.id}</a>`,
          `${d.topic}/${d.partition}/${d.offset}`,
          d.attempts,
          d.lastFailedAt.toISOString(),
          `${d.errorCode ?? d.errorName}: ${d.errorMessage.slice(0, 120)}`,
          d.replayedAt ? `requeued ${d.replayedAt.toISOString()}` : 'pending',
        ]),
        [0, 2],
      )
}`;
    return frame(req, `Dead letters of ${g}`, body, { group: g });
  }

  async function dlqShow(req: IncomingMessage, idText: string): Promise<Html> {
    const id = parseBigint('id', idText);
    const d = await deadLetters.get(id);
    if (!d) throw new HttpError(404, `no dead letter ${idText}`);
    const bytes = (b: Buffer | null) => {
      const s = showBytes(b);
      return s.encoding === null ? '(null)' : s.encoding === 'utf8' ? s.text! : `(base64) ${s.text}`;
    };
    const actions =
      d.replayedAt === null
        ? html`${writeHint(req)}${
            hasSession(req)
              ? html`${
                  options.app
                    ? html`<form class="inline" method="post" action="/dlq/${d.id}/requeue">${csrfField(req)}<label for="rq-actor">Your name (audit)</label><input id="rq-actor" name="actor"> <button>Requeue with the app's current handler</button></form>`
                    : html`<p class="muted">Requeue needs the app: start <code>oncely ui --app ./dist/app.js</code>.</p>`
                }
<form method="post" action="/dlq/${d.id}/purge">${csrfField(req)}<label for="pg-actor">Your name (audit)</label><input id="pg-actor" name="actor"> <button class="danger">Purge this dead letter</button></form>`
              : html``
          }`
        : html`<p class="ok">Requeued and applied at ${d.replayedAt.toISOString()}.</p>`;
    const body = html`<h1>Dead letter ${d.id}</h1>
${table(
  ['Field', 'Value'],
  [
    ['Group', html`<a href="/groups/${encodeURIComponent(d.group)}/dlq">${d.group}</a>`],
    [
      'Record',
      html`<a href="/explain?group=${encodeURIComponent(d.group)}&record=${encodeURIComponent(`${d.topic}/${d.partition}/${d.offset}`)}">${d.topic}/${d.partition}/${d.offset}</a>`,
    ],
    ['Timestamp', d.timestamp?.toISOString() ?? '-'],
    ['Key', bytes(d.key)],
    ['Value', html`<pre>${bytes(d.value)}</pre>`],
    [
      'Headers',
      d.headers.length === 0 ? '(none)' : html`<pre>${d.headers.map((h) => `${h.name}: ${bytes(h.value)}`).join('\n')}</pre>`,
    ],
    ['Error', `${d.errorName}${d.errorCode ? ` [${d.errorCode}]` : ''}: ${d.errorMessage}`],
    ['Attempts', d.attempts],
    ['First / last failure', `${d.firstFailedAt.toISOString()} / ${d.lastFailedAt.toISOString()}`],
    ['Worker', `${d.workerId ?? '-'} (epoch ${d.epoch ?? '-'})`],
    ['Stack', html`<pre>${d.errorStack ?? '(none)'}</pre>`],
  ],
)}
${actions}`;
    return frame(req, `Dead letter ${d.id}`, body, { group: d.group });
  }

  async function checkpoints(req: IncomingMessage, g: string): Promise<Html> {
    const list = await admin.listCheckpoints(g);
    const body = html`<h1>Checkpoints of ${g}</h1>${
      list.length === 0
        ? html`<p>No checkpoints.</p>`
        : table(
            ['Name', 'Created', 'Topics', 'Partitions', ''],
            list.map((c) => [
              c.name,
              c.createdAt.toISOString(),
              c.topics.join(', '),
              c.partitions,
              html`<a href="/groups/${encodeURIComponent(g)}/rewind?kind=checkpoint&value=${encodeURIComponent(c.name)}">rewind to it…</a>`,
            ]),
            [3],
          )
    }
${writeHint(req)}${
  hasSession(req)
    ? html`<form method="post" action="/groups/${encodeURIComponent(g)}/checkpoints">${csrfField(req)}<fieldset><legend>Save the current positions</legend>
<label for="cp-name">Name</label><input id="cp-name" name="name" required><label for="cp-actor">Your name (audit)</label><input id="cp-actor" name="actor"> <button>Create checkpoint</button></fieldset></form>`
    : html``
}`;
    return frame(req, `Checkpoints of ${g}`, body, { group: g });
  }

  async function explain(req: IncomingMessage, url: URL): Promise<Html> {
    const g = url.searchParams.get('group') ?? '';
    const ref = url.searchParams.get('record') ?? '';
    let result = html``;
    if (g !== '' && ref !== '') {
      const h = await admin.explain({ group: g, ...parseRecordRef(ref) });
      result = html`<h2>Verdict: <span id="verdict">${h.state}</span>${h.state === 'applied' ? html` (${h.timesApplied} time(s))` : ''}</h2>
<p>Position: ${h.position ? `next offset ${h.position.nextOffset}, epoch ${h.position.epoch}, ${h.position.owner ?? 'no owner'}` : '-'}</p>
<p>In Kafka: <span id="in-kafka">${inKafka(h.inKafka)}</span></p>
${table(
  ['At', 'Event', 'What'],
  h.events.map((e) => [
    e.at.toISOString(),
    e.kind,
    e.auditId !== undefined
      ? html`${e.detail} <a href="/groups/${encodeURIComponent(g)}/history#audit-${e.auditId}">audit</a>`
      : e.detail,
  ]),
)}`;
    }
    const body = html`<h1>The history of one record</h1>
<form method="get"><label for="ex-group">Group</label><input id="ex-group" name="group" value="${g}" required>
<label for="ex-record">Record (topic/partition/offset)</label><input id="ex-record" name="record" value="${ref}" placeholder="payments/3/1041" required> <button>Explain</button></form>${result}`;
    return frame(req, 'Explain a record', body, { group: g || undefined });
  }

  /** The reset request a wizard form describes, through the same parser as `oncely offsets reset`. */
  function resetRequest(g: string, params: URLSearchParams): ResetRequest {
    const kind = params.get('kind') ?? '';
    const value = (params.get('value') ?? '').trim();
    if (!TARGET_KINDS.includes(kind as (typeof TARGET_KINDS)[number]))
      throw new ConfigError(`pick a target: ${TARGET_KINDS.join(', ')}`);
    const f: Partial<ResetFlags> = {};
    if (kind === 'offset') f.toOffset = value;
    if (kind === 'earliest') f.toEarliest = true;
    if (kind === 'latest') f.toLatest = true;
    if (kind === 'datetime') f.toDatetime = value;
    if (kind === 'duration') f.byDuration = value;
    if (kind === 'shift') f.shiftBy = value;
    if (kind === 'checkpoint') f.toCheckpoint = value;
    if (kind === 'time-of-commit') f.toTimeOfCommit = value;
    const topics = (params.get('topics') ?? '').split(/[\s,]+/).filter(Boolean);
    return { group: g, to: resetTarget(f as ResetFlags), topics: parseTopics(topics.length > 0 ? topics : undefined) };
  }

  function planTable(plan: ResetPlan): Html {
    const headers = PLAN_COLUMNS.map((c) => c[0]!.toUpperCase() + c.slice(1));
    return table(headers, planRows(plan), [1, 2, 3, 4, 5, 6, 7]);
  }

  async function rewind(req: IncomingMessage, g: string, url: URL): Promise<Html> {
    const params = url.searchParams;
    const kind = params.get('kind') ?? 'shift';
    let planned = html``;
    if (params.get('plan') === '1') {
      const request = resetRequest(g, params);
      const plan = await admin.planReset(request);
      const confirm =
        plan.skip > 0n
          ? html`<label for="confirm">This skips ${plan.skip} record(s) that will never be applied. Type the group name to confirm</label><input id="confirm" name="confirm" required autocomplete="off">`
          : html``;
      planned = html`<h2>Plan: ${plan.description}</h2>
<p id="plan-summary">${plan.reprocess} record(s) to reprocess, ${plan.skip} to skip. Nothing has changed yet.</p>${planTable(plan)}
${writeHint(req)}${
  hasSession(req)
    ? html`<form method="post" action="/groups/${encodeURIComponent(g)}/rewind">${csrfField(req)}
${['kind', 'value', 'topics'].map((k) => html`<input type="hidden" name="${k}" value="${params.get(k) ?? ''}">`)}
<input type="hidden" name="expect" value="${plan.entries.map((e) => `${e.topic}:${e.partition}:${e.next ?? ''}`).join(',')}">
${confirm}<label for="rw-actor">Your name (audit)</label><input id="rw-actor" name="actor"> <button class="danger">Execute this plan</button></form>`
    : html``
}`;
    }
    const body = html`<h1>Rewind ${g}</h1>
<p>Running workers need not stop: the reset bumps each partition's epoch, an in-flight commit is refused and its worker re-claims at the new position.</p>
<form method="get"><fieldset><legend>Target</legend><input type="hidden" name="plan" value="1">
<label for="rw-kind">Move to</label><select id="rw-kind" name="kind">${TARGET_KINDS.map(
      (k) => html`<option value="${k}" ${k === kind ? new Html('selected') : ''}>${k}</option>`,
    )}</select>
<label for="rw-value">Value (an offset, an ISO date-time, an ISO 8601 duration such as PT1H, a signed shift, a checkpoint name)</label><input id="rw-value" name="value" value="${params.get('value') ?? ''}">
<label for="rw-topics">Topics (optional, e.g. payments or payments:0-3; default: every partition of the group)</label><input id="rw-topics" name="topics" value="${params.get('topics') ?? ''}">
<button>Show the plan</button></fieldset></form>${planned}`;
    return frame(req, `Rewind ${g}`, body, { group: g });
  }

  async function executeRewind(req: IncomingMessage, g: string): Promise<Html> {
    const form = await authorize(req);
    const request = resetRequest(g, form);
    // What the operator saw must still be what will happen: a moved position re-plans.
    const plan = await admin.planReset(request);
    const now = plan.entries.map((e) => `${e.topic}:${e.partition}:${e.next ?? ''}`).join(',');
    const shifting = request.to.kind === 'shift';
    if (!shifting && now !== (form.get('expect') ?? '')) {
      throw new HttpError(409, 'the plan changed since it was shown (positions or the log moved); show the plan again');
    }
    if (plan.skip > 0n && (form.get('confirm') ?? '').trim() !== g) {
      throw new HttpError(400, `this plan skips ${plan.skip} record(s): type the group name to confirm`);
    }
    const done = await admin.executeReset(request, { actor: actorOf(form) });
    const body = html`<h1>Rewind of ${g} executed</h1>
<p class="ok" id="result">Executed: ${done.reprocess} record(s) to reprocess, ${done.skip} skipped.
Audit entry <a href="/groups/${encodeURIComponent(g)}/history#audit-${done.auditId}">${done.auditId}</a>.</p>${planTable(done)}
<p><a href="/groups/${encodeURIComponent(g)}">Watch the group catch up</a></p>`;
    return frame(req, `Rewind of ${g}`, body, { group: g });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<Html | undefined> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      if (parts.length === 0) return groups(req);
      if (parts[0] === 'login') {
        return frame(
          req,
          'Session',
          writable
            ? html`<h1>Session</h1><p>${hasSession(req) ? 'This browser may make changes.' : 'Enter the write token (ONCELY_UI_TOKEN) to make changes.'}</p>
<form method="post" action="/login"><label for="token">Write token</label><input id="token" name="token" type="password" autocomplete="off" required> <button>Start a session</button></form>`
            : html`<h1>Read-only</h1><p>This console was started without <code>ONCELY_UI_TOKEN</code>: nothing can be changed from it.</p>`,
        );
      }
      if (parts[0] === 'explain') return explain(req, url);
      if (parts[0] === 'dlq' && parts.length === 2) return dlqShow(req, parts[1]!);
      if (parts[0] === 'groups' && parts[1]) {
        const g = parts[1];
        if (parts.length === 2) return group(req, g);
        if (parts[2] === 'history') return history(req, g);
        if (parts[2] === 'dlq') return dlqList(req, g, url);
        if (parts[2] === 'checkpoints') return checkpoints(req, g);
        if (parts[2] === 'rewind') return rewind(req, g, url);
      }
      throw new HttpError(404, 'no such page');
    }
    if (method !== 'POST') throw new HttpError(405, 'method not allowed');
    if (parts[0] === 'login') {
      if (!writable) throw new HttpError(403, 'read-only console: start oncely ui with ONCELY_UI_TOKEN to allow changes');
      if (!sameOrigin(req)) throw new HttpError(403, 'refused: the request does not come from this console (Origin/Referer)');
      const form = await formBody(req);
      if (!same(form.get('token') ?? '', token!)) throw new HttpError(403, 'wrong token');
      res.setHeader('set-cookie', `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`);
      res.statusCode = 303;
      res.setHeader('location', '/');
      return undefined;
    }
    if (parts[0] === 'groups' && parts[1] && parts[2] === 'rewind' && parts.length === 3) return executeRewind(req, parts[1]);
    if (parts[0] === 'groups' && parts[1] && parts[2] === 'checkpoints' && parts.length === 3) {
      const form = await authorize(req);
      const name = (form.get('name') ?? '').trim();
      const c = await admin.createCheckpoint(name, parts[1], { actor: actorOf(form) });
      res.statusCode = 303;
      res.setHeader('location', `/groups/${encodeURIComponent(c.group)}/checkpoints`);
      return undefined;
    }
    if (parts[0] === 'dlq' && parts.length === 3 && (parts[2] === 'purge' || parts[2] === 'requeue')) {
      const form = await authorize(req);
      const id = parseBigint('id', parts[1]!);
      const d = await deadLetters.get(id);
      if (!d) throw new HttpError(404, `no dead letter ${parts[1]}`);
      if (parts[2] === 'purge') {
        await deadLetters.purge({ ids: [id] }, { actor: actorOf(form) });
        res.statusCode = 303;
        res.setHeader('location', `/groups/${encodeURIComponent(d.group)}/dlq`);
        return undefined;
      }
      if (!options.app) throw new HttpError(400, 'requeue needs the app: start oncely ui --app ./dist/app.js');
      const [outcome] = await deadLetters.requeue(options.app, { ids: [id] }, { actor: actorOf(form) });
      const ok = outcome?.status === 'applied';
      return frame(
        req,
        `Requeue of ${id}`,
        html`<h1>Requeue of dead letter ${id}</h1><p id="result" class="${ok ? 'ok' : 'bad'}">${ok ? 'Applied once with the current handler.' : `Failed again, still dead-lettered: ${outcome?.error?.message ?? 'unknown error'}`}</p><p><a href="/dlq/${id}">Back to the dead letter</a></p>`,
        { group: d.group },
      );
    }
    throw new HttpError(404, 'no such action');
  }

  return async (req, res) => {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader(
      'content-security-policy',
      "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    );
    res.setHeader('referrer-policy', 'same-origin');
    try {
      const out = await route(req, res);
      if (out === undefined) {
        res.end();
        return;
      }
      res.statusCode ||= 200;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(req.method === 'HEAD' ? undefined : out.text);
    } catch (e) {
      const status =
        e instanceof HttpError
          ? e.status
          : OncelyError.is(e, 'CONFIG_INVALID')
            ? 400
            : OncelyError.is(e, 'STORE_UNAVAILABLE') || OncelyError.is(e, 'KAFKA_UNAVAILABLE')
              ? 503
              : 500;
      const message = toError(e).message;
      res.statusCode = status;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(
        page(`Error ${status}`, html`<h1>${status}</h1><p class="error" id="error">${message}</p><p><a href="/">Groups</a></p>`, {
          writable: false,
        }).text,
      );
    }
  };
}
