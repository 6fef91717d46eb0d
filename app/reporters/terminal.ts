// The report printed at the end of a run: what ran (loader, seed, harness, date, machine),
// the failures counted by diagnosis kind, the summary table, then every failing case led by
// its diagnosis (what the loader did wrong), with its first mismatching tensor, expected
// versus found, and the command that replays it.
import { countStatuses, isFailing, type CaseResult, type CaseStatus } from '../../harness/conformance/results.js';
import { runFacts, type RunInfo } from '../../harness/conformance/run-info.js';
import { diagnosisLine, diagnosisSummary } from './diagnosis.js';
import { countsText, coverageLines, groupRows } from './coverage.js';
import { summaryRows, type FoldableColumn } from './table.js';
import { countUndeclared, declaredTerminal } from './declared.js';
import { plural } from '../../harness/errors.js';

const BASE_COLUMNS: readonly CaseStatus[] = ['pass', 'warn', 'fail', 'skip', 'xfail', 'unexpected-pass'];
/** The inconclusive column appears when a case is inconclusive. */
export const statusColumns = (results: readonly CaseResult[]): readonly CaseStatus[] =>
  results.some((r) => r.status === 'inconclusive') ? [...BASE_COLUMNS, 'inconclusive'] : BASE_COLUMNS;
/** Lines of a loader's stderr a report shows (the tail; the JSON report keeps the whole kept tail). */
const STDERR_LINES = 20;

/** Past this many rows, parallel settings, then layouts and dtypes, share rows (the HTML report keeps them apart). */
const MAX_ROWS = 60;
const FOLDS: ReadonlyArray<ReadonlySet<FoldableColumn>> = [new Set(), new Set(['parallel']), new Set(['parallel', 'layout', 'dtype'])];

export function terminalReport(results: readonly CaseResult[], run?: RunInfo): string {
  const COLUMNS = statusColumns(results);
  let rows = summaryRows(results);
  for (const fold of FOLDS.slice(1)) if (rows.length > MAX_ROWS) rows = summaryRows(results, fold);
  const header = ['check', 'model', 'layout', 'dtype', 'parallel', ...COLUMNS];
  const body = rows.map((r) => [r.check, r.model, r.layout, r.dtype, r.parallel, ...COLUMNS.map((c) => (r.counts[c] ? String(r.counts[c]) : '.'))]);
  const out: string[] = [];
  if (run) out.push(...runFacts(run).map(([k, v]) => `${`${k}:`.padEnd(10)}${v}`), '');
  const kinds = diagnosisSummary(results);
  if (kinds) out.push(kinds, '');
  out.push(table(header, body, 5));
  const groups = groupRows(results);
  if (groups.length < rows.length) {
    out.push('', 'by kind × model type × layout:');
    for (const g of groups) out.push(`  ${g.check} ${g.model} ${g.layout} (${g.dtype}, ${g.parallel}): ${countsText(g.counts)}`);
  }
  const cov = coverageLines(results);
  if (cov.length) out.push('', 'coverage (cases run):', ...cov.map((l) => `  ${l}`));

  const failing = results.filter((r) => isFailing(r.status));
  for (const r of failing) {
    out.push('');
    out.push(`${r.status === 'fail' ? 'FAIL' : 'UNEXPECTED PASS'} ${r.id}`);
    if (r.failure) {
      for (const d of r.failure.diagnosis ?? []) out.push(`  ${diagnosisLine(d)}`);
      out.push(indent(r.failure.message));
      if (r.failure.tensor !== undefined) out.push(`  tensor:   ${r.failure.tensor}`);
      if (r.failure.expected !== undefined) out.push(`  expected: ${r.failure.expected}`);
      if (r.failure.found !== undefined) out.push(`  found:    ${r.failure.found}`);
      out.push(...failureFacts(r));
    }
    out.push(`  replay:   ${r.replay}`);
  }
  const inconclusive = results.filter((r) => r.status === 'inconclusive');
  if (inconclusive.length) {
    out.push('', `${inconclusive.length} inconclusive: the loader refused the valid twin as well, so refusing the broken checkpoint or request proves nothing (not counted as passes):`);
    for (const r of inconclusive) out.push(`INCONCLUSIVE ${r.id}`, indent(r.note ?? ''), `  replay:   ${r.replay}`);
  }

  const declared = declaredTerminal(results, run);
  if (declared.length) out.push('', ...declared);

  const c = countStatuses(results);
  const undeclared = countUndeclared(results);
  out.push('');
  out.push(
    `${plural(results.length, 'case')}: ${c.pass} passed, ${c.warn} warned, ${c.fail} failed, ${c.skip} skipped${undeclared ? ` (${undeclared} not declared)` : ''}, ${c.xfail} expected failures, ${c['unexpected-pass']} unexpected passes` +
      (c.inconclusive ? `, ${c.inconclusive} inconclusive` : '') +
      ` — ${failing.length === 0 ? 'OK' : 'FAILED'}`,
  );
  return out.join('\n') + '\n';
}

/** The facts of a failure beyond tensor/expected/found: the call, the defect, the kept files, the loader's stderr tail. */
export function failureFacts(r: CaseResult): string[] {
  const f = r.failure;
  const out: string[] = [];
  if (f?.rank !== undefined) out.push(`  rank:     ${f.rank}`);
  if (f?.layout !== undefined) out.push(`  layout:   ${f.layout}`);
  if (f?.defect !== undefined) out.push(`  defect:   ${f.defect}`);
  if (f?.kept !== undefined) out.push(`  kept:     ${f.kept}`);
  // Shown unless the message already ends with it (a refusal's message quotes its stderr).
  const last = r.stderr?.trimEnd().split('\n').at(-1)?.replace(/^\[[^\]]*\] /, '');
  if (r.stderr && !(last && f?.message.includes(last))) out.push('  loader stderr (tail):', ...r.stderr.trimEnd().split('\n').slice(-STDERR_LINES).map((l) => `    ${l}`));
  return out;
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
