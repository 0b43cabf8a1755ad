/** Server-rendered HTML for the console: escaping, the page frame, tables, a sparkline. No script. */

/** Escapes text for HTML element content and attribute values. */
export function esc(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'bigint' ? v.toString() : String(v);
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A tagged template whose interpolations are escaped unless they are {@link Html}. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out +=
      (Array.isArray(v) ? v.map((x) => (x instanceof Html ? x.text : esc(x))).join('') : v instanceof Html ? v.text : esc(v)) +
      strings[i + 1]!;
  });
  return new Html(out);
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #5b6470; --line: #d8dde3; --bad: #b42318; --ok: #067647; --warn: #b54708; --accent: #1d4ed8; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --bg: #111418; --muted: #9aa4af; --line: #2c333a; --accent: #7aa2ff; } }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: baseline; padding: .75rem 1rem; border-bottom: 1px solid var(--line); }
header a { color: var(--accent); text-decoration: none; }
header nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
header .brand { font-weight: 700; color: var(--fg); }
main { padding: 1rem; max-width: 1400px; }
h1 { font-size: 1.3rem; margin: .2rem 0 1rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { font-weight: 600; color: var(--muted); }
.bad { color: var(--bad); font-weight: 600; } .ok { color: var(--ok); } .warn { color: var(--warn); } .muted { color: var(--muted); }
form.inline { display: inline; }
fieldset { border: 1px solid var(--line); padding: .75rem 1rem; margin: 0 0 1rem; }
label { display: block; margin: .4rem 0 .2rem; font-weight: 600; }
input, select, button { font: inherit; padding: .3rem .5rem; }
button { cursor: pointer; }
button.danger { color: #fff; background: var(--bad); border: 0; }
.note { border-left: 3px solid var(--warn); padding: .4rem .75rem; margin: 1rem 0; }
.error { border-left: 3px solid var(--bad); padding: .4rem .75rem; margin: 1rem 0; }
pre { white-space: pre-wrap; word-break: break-all; }
a:focus, button:focus, input:focus, select:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
`;

/** The page frame: navigation, an optional refresh for live pages, the writable state. */
export function page(
  title: string,
  body: Html,
  options: { refreshSeconds?: number; writable: boolean; group?: string; status?: number } = { writable: false },
): Html {
  const g = options.group;
  const nav = g
    ? html`<a href="/groups/${encodeURIComponent(g)}">partitions</a> <a href="/groups/${encodeURIComponent(g)}/history">offset log and audit</a>
       <a href="/groups/${encodeURIComponent(g)}/dlq">dead letters</a> <a href="/groups/${encodeURIComponent(g)}/checkpoints">checkpoints</a>
       <a href="/groups/${encodeURIComponent(g)}/rewind">rewind</a> <a href="/explain?group=${encodeURIComponent(g)}">explain a record</a>`
    : html``;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
${options.refreshSeconds ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}">` : html``}
<title>${title} · oncely</title><style>${new Html(STYLE)}</style></head>
<body><header><a class="brand" href="/">oncely</a><a href="/">groups</a>${g ? html`<span class="muted">group</span> <strong>${g}</strong>` : html``}
<nav aria-label="group pages">${nav}</nav>
<span class="muted">${options.writable ? html`writable (<a href="/login">session</a>)` : html`read-only`}</span></header>
<main id="main">${body}</main></body></html>`;
}

/** A table with a header row; cells are escaped unless Html. `num` marks right-aligned columns. */
export function table(headers: string[], rows: unknown[][], num: number[] = []): Html {
  const n = new Set(num);
  const cell = (v: unknown, i: number, tag: 'td' | 'th') =>
    `<${tag}${n.has(i) ? ' class="num"' : ''}${tag === 'th' ? ' scope="col"' : ''}>${v instanceof Html ? v.text : esc(v ?? '-')}</${tag}>`;
  return new Html(
    `<div class="scroll"><table><thead><tr>${headers.map((h, i) => cell(h, i, 'th')).join('')}</tr></thead><tbody>${rows
      .map((r) => `<tr>${r.map((c, i) => cell(c, i, 'td')).join('')}</tr>`)
      .join('')}</tbody></table></div>`,
  );
}

/** An inline SVG line of the last values (oldest left), with a text alternative. */
export function sparkline(values: number[], label: string): Html {
  if (values.length < 2) return html`<span class="muted">(the trend appears after a few refreshes)</span>`;
  const w = 240;
  const h = 40;
  const max = Math.max(1, ...values);
  const points = values
    .map((v, i) => `${((i / (values.length - 1)) * w).toFixed(1)},${(h - (v / max) * (h - 2) - 1).toFixed(1)}`)
    .join(' ');
  return new Html(
    `<svg role="img" aria-label="${esc(label)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><title>${esc(label)}</title>` +
      `<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${points}"/></svg>`,
  );
}
