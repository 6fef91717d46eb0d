// The summary both the terminal and the HTML reports show: one row per model type ×
// layout × dtype × parallel setting, with a count per status. Read from the case IDs, so
// it works the same on merged shard outputs.
import { param, parseCaseId, type CaseId } from '../../harness/conformance/case-id.js';
import { MODEL_TYPES } from '../../harness/layouts/registry.js';

/**
 * A golden fixture's model type and dtype from its name `<model type>-<dtype>`, whose dtype may
 * hold dashes (`qwen3_moe-gptq-desc-act`): the longest registered model type it starts with
 * (else the last dash), the rest the dtype.
 */
export function fixtureParts(name: string | undefined): { model: string; dtype: string } | undefined {
  if (name === undefined) return undefined;
  const model = MODEL_TYPES.filter((m) => name.startsWith(`${m}-`)).sort((a, b) => b.length - a.length)[0] ?? /^(.+)-[^-]+$/.exec(name)?.[1];
  return model === undefined ? undefined : { model, dtype: name.slice(model.length + 1) };
}
import { countStatuses, type CaseResult, type StatusCounts } from '../../harness/conformance/results.js';

export interface SummaryRow {
  /** The case's test (load, layout, refuse, request, golden, ...). */
  check: string;
  model: string;
  layout: string;
  dtype: string;
  parallel: string;
  counts: StatusCounts;
}

/** e.g. `tp=2 ep=3 round_robin`, or `-` for cases without a parallel setting. */
function parallelSetting(id: CaseId): string {
  const parts: string[] = [];
  const tp = param(id, 'tp');
  const ep = param(id, 'ep');
  if (tp !== undefined) parts.push(`tp=${tp}`);
  if (ep !== undefined) parts.push(`ep=${ep}`);
  const placement = param(id, 'placement');
  if (placement !== undefined && ep !== '1') parts.push(placement);
  return parts.length ? parts.join(' ') : '-';
}

export type FoldableColumn = 'layout' | 'dtype' | 'parallel';

/**
 * Rows of the summary. Folded columns do not split rows: cases that differ only there
 * share a row, and the column says which value they had or how many, for a table that
 * fits a terminal.
 */
export function summaryRows(results: readonly CaseResult[], fold: ReadonlySet<FoldableColumn> = new Set()): SummaryRow[] {
  const groups = new Map<string, { key: Omit<SummaryRow, 'counts'>; results: CaseResult[]; seen: Record<FoldableColumn, Set<string>> }>();
  for (const r of results) {
    const id = parseCaseId(r.id);
    const fixture = fixtureParts(param(id, 'fixture'));
    const values: Record<FoldableColumn, string> = {
      layout: param(id, 'layout') ?? '-',
      dtype: param(id, 'dtype') ?? fixture?.dtype ?? '-',
      parallel: parallelSetting(id),
    };
    const key = { check: id.test, model: param(id, 'model') ?? fixture?.model ?? '-', ...values };
    for (const c of fold) key[c] = '';
    const k = JSON.stringify(key);
    const g = groups.get(k) ?? { key, results: [], seen: { layout: new Set<string>(), dtype: new Set<string>(), parallel: new Set<string>() } };
    g.results.push(r);
    for (const c of fold) g.seen[c].add(values[c]);
    groups.set(k, g);
  }
  const many: Record<FoldableColumn, string> = { layout: 'layouts', dtype: 'dtypes', parallel: 'settings' };
  const folded = (g: { seen: Record<FoldableColumn, Set<string>> }, c: FoldableColumn) => (g.seen[c].size === 1 ? [...g.seen[c]][0]! : `${g.seen[c].size} ${many[c]}`);
  return [...groups.values()]
    .map((g) => {
      const row: SummaryRow = { ...g.key, counts: countStatuses(g.results) };
      for (const c of fold) row[c] = folded(g, c);
      return row;
    })
    .sort((a, b) => cmp(a.check, b.check) || cmp(a.model, b.model) || cmp(a.layout, b.layout) || cmp(a.dtype, b.dtype) || cmp(a.parallel, b.parallel));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
