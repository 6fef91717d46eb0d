// The summary both the terminal and the HTML reports show: one row per model type ×
// layout × dtype × parallel setting, with a count per status. Read from the case IDs, so
// it works the same on merged shard outputs.
import { param, parseCaseId, type CaseId } from '../case-id.js';
import { countStatuses, type CaseResult, type StatusCounts } from '../results.js';

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
export function parallelSetting(id: CaseId): string {
  const parts: string[] = [];
  const tp = param(id, 'tp');
  const ep = param(id, 'ep');
  if (tp !== undefined) parts.push(`tp=${tp}`);
  if (ep !== undefined) parts.push(`ep=${ep}`);
  const placement = param(id, 'placement');
  if (placement !== undefined && ep !== '1') parts.push(placement);
  return parts.length ? parts.join(' ') : '-';
}

/**
 * Rows of the summary. With `foldParallel`, the parallel settings of one check × model ×
 * layout × dtype share a row (the column then says how many there were), for a table
 * that fits a terminal.
 */
export function summaryRows(results: readonly CaseResult[], opts: { foldParallel?: boolean } = {}): SummaryRow[] {
  const groups = new Map<string, { key: Omit<SummaryRow, 'counts'>; results: CaseResult[]; settings: Set<string> }>();
  for (const r of results) {
    const id = parseCaseId(r.id);
    // Golden fixtures are named `<model_type>-<dtype>`.
    const fixture = /^(.+)-([a-z0-9]+)$/.exec(param(id, 'fixture') ?? '');
    const key = {
      check: id.test,
      model: param(id, 'model') ?? fixture?.[1] ?? '-',
      layout: param(id, 'layout') ?? '-',
      dtype: param(id, 'dtype') ?? fixture?.[2] ?? '-',
      parallel: opts.foldParallel ? '' : parallelSetting(id),
    };
    const k = JSON.stringify(key);
    const g = groups.get(k) ?? { key, results: [], settings: new Set<string>() };
    g.results.push(r);
    g.settings.add(parallelSetting(id));
    groups.set(k, g);
  }
  const folded = (g: { settings: Set<string> }) => (g.settings.size === 1 ? [...g.settings][0]! : `${g.settings.size} settings`);
  return [...groups.values()]
    .map((g) => ({ ...g.key, ...(opts.foldParallel && { parallel: folded(g) }), counts: countStatuses(g.results) }))
    .sort((a, b) => cmp(a.check, b.check) || cmp(a.model, b.model) || cmp(a.layout, b.layout) || cmp(a.dtype, b.dtype) || cmp(a.parallel, b.parallel));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
