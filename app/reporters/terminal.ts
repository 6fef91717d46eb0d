// The report printed at the end of a run: the summary table, then every failing case with
// its first mismatching tensor, expected versus found, and the command that replays it.
import { countStatuses, isFailing, type CaseResult } from '../../harness/conformance/results.js';
import { summaryRows, type FoldableColumn } from './table.js';
import { plural } from '../../harness/errors.js';

const COLUMNS = ['pass', 'warn', 'fail', 'skip', 'xfail', 'unexpected-pass'] as const;

/** Past this many rows, parallel settings, then layouts and dtypes, share rows (the HTML report keeps them apart). */
const MAX_ROWS = 60;
const FOLDS: ReadonlyArray<ReadonlySet<FoldableColumn>> = [new Set(), new Set(['parallel']), new Set(['parallel', 'layout', 'dtype'])];

export function terminalReport(results: readonly CaseResult[]): string {
  let rows = summaryRows(results);
  for (const fold of FOLDS.slice(1)) if (rows.length > MAX_ROWS) rows = summaryRows(results, fold);
  const header = ['check', 'model', 'layout', 'dtype', 'parallel', ...COLUMNS];
  const body = rows.map((r) => [r.check, r.model, r.layout, r.dtype, r.parallel, ...COLUMNS.map((c) => (r.counts[c] ? String(r.counts[c]) : '.'))]);
  const out = [table(header, body, 5)];

  const failing = results.filter((r) => isFailing(r.status));
  for (const r of failing) {
    out.push('');
    out.push(`${r.status === 'fail' ? 'FAIL' : 'UNEXPECTED PASS'} ${r.id}`);
    if (r.failure) {
      out.push(indent(r.failure.message));
      if (r.failure.tensor !== undefined) out.push(`  tensor:   ${r.failure.tensor}`);
      if (r.failure.expected !== undefined) out.push(`  expected: ${r.failure.expected}`);
      if (r.failure.found !== undefined) out.push(`  found:    ${r.failure.found}`);
    }
    out.push(`  replay:   ${r.replay}`);
  }

  const c = countStatuses(results);
  out.push('');
  out.push(
    `${plural(results.length, 'case')}: ${c.pass} passed, ${c.warn} warned, ${c.fail} failed, ${c.skip} skipped, ${c.xfail} expected failures, ${c['unexpected-pass']} unexpected passes` +
      ` — ${failing.length === 0 ? 'OK' : 'FAILED'}`,
  );
  return out.join('\n') + '\n';
}

function table(header: string[], rows: string[][], textColumns: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) =>
    cells.map((cell, i) => (i < textColumns ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
