// A self-contained HTML page (no scripts, no external files): the summary table, then per
// failing case its details and an SVG heat map of the error by expert and by row, which
// shows a bug's shape at a glance (one expert wrong, half the rows wrong, every row past
// a TP boundary wrong, ...).
import { countStatuses, isFailing, type CaseResult } from '../../harness/conformance/results.js';
import { escapeXml as esc } from './junit.js';
import { summaryRows } from './table.js';
import { plural } from '../../harness/errors.js';

const COLUMNS = ['pass', 'warn', 'fail', 'skip', 'xfail', 'unexpected-pass'] as const;
/** Larger maps are max-pooled down to this many cells per side, so a page stays small. */
const MAX_CELLS = 64;
/** Cells are 8 to 24 px, so a small map is still big enough to read. */
const cellPx = (rows: number, cols: number) => Math.max(8, Math.min(24, Math.floor(480 / Math.max(rows, cols))));

export function htmlReport(results: readonly CaseResult[], title = 'moe-conformance report'): string {
  const c = countStatuses(results);
  const failing = results.filter((r) => isFailing(r.status));
  const rows = summaryRows(results)
    .map((r) => {
      const cls = r.counts.fail + r.counts['unexpected-pass'] > 0 ? 'bad' : 'ok';
      const cells = COLUMNS.map((k) => `<td class="n">${r.counts[k] || ''}</td>`).join('');
      return `<tr class="${cls}"><td>${esc(r.check)}</td><td>${esc(r.model)}</td><td>${esc(r.layout)}</td><td>${esc(r.dtype)}</td><td>${esc(r.parallel)}</td>${cells}</tr>`;
    })
    .join('\n');
  const failures = failing.map(failureSection).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}td.n{text-align:right}
tr.bad td{background:#fde2e2}tr.ok td{background:#e8f6e8}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere}section{margin:2em 0}
h3 code{overflow-wrap:anywhere}svg.heatmap{border:1px solid #ccc}
</style></head><body>
<h1>${esc(title)}</h1>
<p id="totals">${plural(results.length, 'case')}: ${c.pass} passed, ${c.warn} warned, ${c.fail} failed, ${c.skip} skipped, ${c.xfail} expected failures, ${c['unexpected-pass']} unexpected passes</p>
<table id="summary"><thead><tr><th>check</th><th>model</th><th>layout</th><th>dtype</th><th>parallel</th>${COLUMNS.map((k) => `<th>${k}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Failures (${failing.length})</h2>
${failures}
</body></html>
`;
}

function failureSection(r: CaseResult): string {
  const f = r.failure;
  const facts = [
    f?.tensor !== undefined ? `tensor:   ${f.tensor}` : '',
    f?.expected !== undefined ? `expected: ${f.expected}` : '',
    f?.found !== undefined ? `found:    ${f.found}` : '',
    r.seed !== undefined ? `seed:     ${r.seed}` : '',
    `replay:   ${r.replay}`,
  ].filter((s) => s !== '');
  return `<section class="failure"><h3>${esc(r.status)} <code>${esc(r.id)}</code></h3>
<pre>${esc(f?.message ?? '')}\n\n${esc(facts.join('\n'))}</pre>
${f?.heatmap ? heatmapSvg(f.heatmap, f.heatmapAxes) : ''}</section>`;
}

/** Rows are experts, columns are output rows; colour is the error relative to the largest. */
export function heatmapSvg(map: readonly (readonly number[])[], axes: readonly [string, string] = ['expert', 'row']): string {
  const pooled = pool(map);
  const rows = pooled.length;
  const cols = Math.max(0, ...pooled.map((r) => r.length));
  if (rows === 0 || cols === 0) return '';
  const finite = pooled.flat().filter((v) => Number.isFinite(v));
  const max = Math.max(0, ...finite.map(Math.abs));
  const px = cellPx(rows, cols);
  const rects: string[] = [];
  pooled.forEach((row, y) =>
    row.forEach((v, x) => {
      rects.push(`<rect x="${x * px}" y="${y * px}" width="${px}" height="${px}" fill="${colour(v, max)}"><title>${y}, ${x}: ${v}</title></rect>`);
    }),
  );
  const w = cols * px;
  const h = rows * px;
  return `<figure><svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${rects.join('')}</svg>
<figcaption>error by ${esc(axes[0])} (rows, ${map.length}) × ${esc(axes[1])} (columns, ${Math.max(0, ...map.map((r) => r.length))}); max ${max.toPrecision(3)}${pooled.length < map.length || cols < Math.max(0, ...map.map((r) => r.length)) ? ', max-pooled' : ''}</figcaption></figure>`;
}

function pool(map: readonly (readonly number[])[]): number[][] {
  const rowStep = Math.ceil(map.length / MAX_CELLS) || 1;
  const width = Math.max(0, ...map.map((r) => r.length));
  const colStep = Math.ceil(width / MAX_CELLS) || 1;
  const out: number[][] = [];
  for (let y = 0; y < map.length; y += rowStep) {
    const row: number[] = [];
    for (let x = 0; x < width; x += colStep) {
      let m = 0;
      for (let yy = y; yy < Math.min(map.length, y + rowStep); yy++) {
        for (let xx = x; xx < Math.min(width, x + colStep); xx++) {
          const v = map[yy]![xx] ?? 0;
          m = Number.isNaN(v) || Number.isNaN(m) ? NaN : Math.max(m, Math.abs(v));
        }
      }
      row.push(m);
    }
    out.push(row);
  }
  return out;
}

function colour(v: number, max: number): string {
  if (!Number.isFinite(v)) return '#000000'; // NaN or Inf: the worst case, in black
  const t = max > 0 ? Math.abs(v) / max : 0;
  const g = Math.round(255 * (1 - t));
  return `rgb(255,${g},${g})`;
}
