// A self-contained HTML page (no scripts, no external files): what ran, the failures counted
// by diagnosis kind, the summary table, then per failing case its diagnosis (what the loader
// did wrong), the evidence, and an SVG heat map of the error by expert and by row, with axes,
// ticks and a colour legend, which shows a bug's shape at a glance (one expert wrong, half
// the rows wrong, every row past a TP boundary wrong, ...).
import { countStatuses, isFailing, type CaseResult } from '../../harness/conformance/results.js';
import { countsText, coverageLines, groupRows } from './coverage.js';
import { runFacts, type RunInfo } from '../../harness/conformance/run-info.js';
import { diagnosisSummary } from './diagnosis.js';
import { escapeXml as esc } from './junit.js';
import { summaryRows } from './table.js';
import { statusColumns } from './terminal.js';
import { countUndeclared, loaderFacts, undeclaredGroups } from './declared.js';
import { plural } from '../../harness/errors.js';

/** Larger maps are max-pooled down to this many cells per side, so a page stays small. */
const MAX_CELLS = 64;
/** Cells are 10 to 40 px and the map at least 320 px on its longer side, so a small map is big enough to read. */
export const cellPx = (rows: number, cols: number) => Math.max(10, Math.min(40, Math.floor(640 / Math.max(rows, cols))));

/**
 * Heat-map cells one report draws at most (about 110 bytes each, 28 MB in all): each map is
 * pooled to 64 × 64, but a results file of 2,000 failures with such maps (16.9 MB) made an
 * HTML string past V8's longest (RangeError). Past it, a failure says its map is left out.
 */
export const MAX_REPORT_CELLS = 250_000;

export function htmlReport(results: readonly CaseResult[], title = 'moe-conformance report', run?: RunInfo): string {
  const COLUMNS = statusColumns(results);
  const c = countStatuses(results);
  const failing = results.filter((r) => isFailing(r.status));
  const inconclusive = results.filter((r) => r.status === 'inconclusive');
  const groups = groupRows(results)
    .map((g) => `<tr><td>${esc(g.check)}</td><td>${esc(g.model)}</td><td>${esc(g.layout)}</td><td>${esc(countsText(g.counts))}</td></tr>`)
    .join('\n');
  const rows = summaryRows(results)
    .map((r) => {
      const cls = r.counts.fail + r.counts['unexpected-pass'] > 0 ? 'bad' : 'ok';
      const cells = COLUMNS.map((k) => `<td class="n">${r.counts[k] || ''}</td>`).join('');
      return `<tr class="${cls}"><td>${esc(r.check)}</td><td>${esc(r.model)}</td><td>${esc(r.layout)}</td><td>${esc(r.dtype)}</td><td>${esc(r.parallel)}</td>${cells}</tr>`;
    })
    .join('\n');
  const heat = { left: MAX_REPORT_CELLS };
  const failures = failing.map((r) => failureSection(r, heat)).join('\n');
  const kinds = diagnosisSummary(results);
  const facts = run ? `<table id="run">${runFacts(run).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>\n` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}td.n{text-align:right}
tr.bad td{background:#fde2e2}tr.ok td{background:#e8f6e8}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere}section{margin:2em 0}
h3 code{overflow-wrap:anywhere}svg.heatmap{font:12px system-ui,sans-serif}
#run th{text-align:left;background:#f0f0f0}#kinds{font-size:1.2em;font-weight:bold}
ul.diagnosis{background:#fff4d6;border-left:4px solid #e0a000;padding:8px 8px 8px 28px}ul.diagnosis b{color:#a04000}
</style></head><body>
<h1>${esc(title)}</h1>
${facts}${run?.declared ? `<table id="loader"><tbody>\n${loaderFacts(run.declared).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('\n')}\n</tbody></table>\n` : ''}${kinds ? `<p id="kinds">${esc(kinds)}</p>
` : ''}<p id="totals">${plural(results.length, 'case')}: ${c.pass} passed, ${c.warn} warned, ${c.fail} failed, ${c.skip} skipped${countUndeclared(results) ? ` (${countUndeclared(results)} not declared)` : ''}, ${c.xfail} expected failures, ${c['unexpected-pass']} unexpected passes${c.inconclusive ? `, ${c.inconclusive} inconclusive` : ''}</p>
<ul id="coverage">${coverageLines(results).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
<table id="summary"><thead><tr><th>check</th><th>model</th><th>layout</th><th>dtype</th><th>parallel</th>${COLUMNS.map((k) => `<th>${k}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>By kind × model type × layout</h2>
<table id="groups"><thead><tr><th>kind</th><th>model</th><th>layout</th><th>cases</th></tr></thead>
<tbody>
${groups}
</tbody></table>
<h2>Failures (${failing.length})</h2>
${failures}
${inconclusive.length ? `<h2 id="inconclusive">Inconclusive (${inconclusive.length})</h2>
<p>The loader refused the valid twin as well, so refusing the broken checkpoint or request proves nothing: not counted as passes.</p>
${inconclusive.map((r) => `<section class="inconclusive"><h3>inconclusive <code>${esc(r.id)}</code></h3><pre>${esc(r.note ?? '')}\n\nreplay:   ${esc(r.replay)}</pre></section>`).join('\n')}` : ''}
${undeclaredSection(results)}
</body></html>
`;
}

/** Cases skipped because the loader does not declare what they need: counted by reason, every ID listed. */
function undeclaredSection(results: readonly CaseResult[]): string {
  const groups = undeclaredGroups(results);
  if (!groups.length) return '';
  const items = groups.map((g) => `<details><summary>${g.ids.length} × ${esc(g.reason)}</summary><ul>${g.ids.map((id) => `<li><code>${esc(id)}</code></li>`).join('')}</ul></details>`);
  return `<section id="undeclared"><h2>Skipped, not declared (${countUndeclared(results)})</h2>\n${items.join('\n')}</section>`;
}

function failureSection(r: CaseResult, heat: { left: number }): string {
  const f = r.failure;
  const facts = [
    f?.tensor !== undefined ? `tensor:   ${f.tensor}` : '',
    f?.expected !== undefined ? `expected: ${f.expected}` : '',
    f?.found !== undefined ? `found:    ${f.found}` : '',
    f?.rank !== undefined ? `rank:     ${f.rank}` : '',
    f?.layout !== undefined ? `layout:   ${f.layout}` : '',
    f?.defect !== undefined ? `defect:   ${f.defect}` : '',
    f?.kept !== undefined ? `kept:     ${f.kept}` : '',
    r.seed !== undefined ? `seed:     ${r.seed}` : '',
    `replay:   ${r.replay}`,
  ].filter((s) => s !== '');
  const diagnosis = (f?.diagnosis ?? []).map((d) => `<li><b>${esc(d.kind)}</b>${d.tensor ? ` <code>${esc(d.tensor)}</code>` : ''}: ${esc(d.detail)}</li>`).join('');
  return `<section class="failure"><h3>${esc(r.status)} <code>${esc(r.id)}</code></h3>
${diagnosis ? `<ul class="diagnosis">${diagnosis}</ul>\n` : ''}<pre>${esc(f?.message ?? '')}\n\n${esc(facts.join('\n'))}</pre>${r.stderr ? `\n<pre class="stderr">loader stderr (tail):\n${esc(r.stderr)}</pre>` : ''}
${f?.heatmap ? heatmapWithin(heat, f.heatmap, f.heatmapAxes, f.heatmapRows) : ''}</section>`;
}

/** The heat map while the report's cell budget lasts, else a line saying it is left out. */
function heatmapWithin(heat: { left: number }, map: readonly (readonly number[])[], axes?: readonly [string, string], rowLabels?: readonly number[]): string {
  const cells = Math.min(map.length, MAX_CELLS) * Math.min(widthOf(map), MAX_CELLS);
  if (cells > heat.left) return `<p class="heatmap-left-out">heat map left out: this report already draws ${MAX_REPORT_CELLS} cells</p>`;
  heat.left -= cells;
  return heatmapSvg(map, axes, rowLabels);
}

/**
 * Rows are experts, columns are output rows; colour is the error relative to the largest,
 * white (0) to red (the largest), black where NaN or infinite. Axes are titled and ticked
 * with the map's own indices (before pooling), and a colour legend gives the scale.
 */
export function heatmapSvg(map: readonly (readonly number[])[], axes: readonly [string, string] = ['expert', 'row'], rowLabels?: readonly number[]): string {
  const pooled = pool(map);
  const rows = pooled.length;
  const cols = widthOf(pooled);
  if (rows === 0 || cols === 0) return '';
  const width = widthOf(map);
  const rowStep = Math.ceil(map.length / MAX_CELLS) || 1;
  const colStep = Math.ceil(width / MAX_CELLS) || 1;
  let max = 0;
  for (const row of pooled) for (const v of row) if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
  const px = cellPx(rows, cols);
  const [left, top, bottom, legendGap, legendW, legendText] = [64, 8, 44, 24, 16, 72];
  const w = cols * px;
  const h = rows * px;
  const rects: string[] = [];
  pooled.forEach((row, y) =>
    row.forEach((v, x) => {
      rects.push(`<rect x="${left + x * px}" y="${top + y * px}" width="${px}" height="${px}" fill="${colour(v, max)}"><title>${esc(axes[0])} ${rowLabels?.[y * rowStep] ?? y * rowStep}, ${esc(axes[1])} ${x * colStep}: ${v}</title></rect>`);
    }),
  );
  // Ticks: about 8 per axis, at the map's own indices.
  const every = (n: number) => Math.max(1, Math.ceil(n / 8));
  const ticks: string[] = [];
  for (let y = 0; y < rows; y += every(rows)) {
    const cy = top + y * px + px / 2;
    ticks.push(`<line x1="${left - 4}" y1="${cy}" x2="${left}" y2="${cy}" stroke="#333"/><text x="${left - 6}" y="${cy + 4}" text-anchor="end">${rowLabels?.[y * rowStep] ?? y * rowStep}</text>`);
  }
  for (let x = 0; x < cols; x += every(cols)) {
    const cx = left + x * px + px / 2;
    ticks.push(`<line x1="${cx}" y1="${top + h}" x2="${cx}" y2="${top + h + 4}" stroke="#333"/><text x="${cx}" y="${top + h + 16}" text-anchor="middle">${x * colStep}</text>`);
  }
  const titles = `<text class="axis-title" x="${left + w / 2}" y="${top + h + 36}" text-anchor="middle">${esc(axes[1])}</text>` +
    `<text class="axis-title" transform="translate(14 ${top + h / 2}) rotate(-90)" text-anchor="middle">${esc(axes[0])}</text>`;
  const lx = left + w + legendGap;
  const lh = Math.max(h, 120);
  const legend = `<g class="legend"><defs><linearGradient id="heat-scale" x1="0" y1="1" x2="0" y2="0"><stop offset="0" stop-color="rgb(255,255,255)"/><stop offset="1" stop-color="rgb(255,0,0)"/></linearGradient></defs>` +
    `<rect x="${lx}" y="${top}" width="${legendW}" height="${lh - 24}" fill="url(#heat-scale)" stroke="#999"/>` +
    [0, 0.5, 1].map((t) => `<text x="${lx + legendW + 4}" y="${top + (1 - t) * (lh - 24) + 4}">${(t * max).toPrecision(3)}</text>`).join('') +
    `<rect x="${lx}" y="${top + lh - 16}" width="${legendW}" height="12" fill="#000000"/><text x="${lx + legendW + 4}" y="${top + lh - 6}">NaN/Inf</text>` +
    `<text x="${lx}" y="${top + lh + 12}">|error|</text></g>`;
  const totalW = lx + legendW + legendText;
  const totalH = Math.max(top + h + bottom, top + lh + 16);
  return `<figure><svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="${totalW}" height="${totalH}" viewBox="0 0 ${totalW} ${totalH}">` +
    `<g class="cells">${rects.join('')}</g><rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="#999"/>${ticks.join('')}${titles}${legend}</svg>
<figcaption>error by ${esc(axes[0])} (rows, ${map.length}) × ${esc(axes[1])} (columns, ${width}); max ${max.toPrecision(3)}${rowStep > 1 || colStep > 1 ? ', max-pooled' : ''}</figcaption></figure>`;
}

/** The longest row's length, by a loop: a spread of a results file's hundred thousand rows overflows the stack. */
function widthOf(map: readonly (readonly number[])[]): number {
  let width = 0;
  for (const row of map) width = Math.max(width, row.length);
  return width;
}

function pool(map: readonly (readonly number[])[]): number[][] {
  const rowStep = Math.ceil(map.length / MAX_CELLS) || 1;
  const width = widthOf(map);
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
