// What a run covered and how its cases fared, grouped the way an engine team reads them:
// by model type × layout × kind of case. Every report shows both; `moe-conformance diff`
// groups changed cases the same way. Read from the case IDs alone, like the summary table,
// so it works on merged shard outputs and on results files of older runs.
import { param, parseCaseId, type CaseId } from '../../harness/conformance/case-id.js';
import { CASE_STATUSES, type CaseResult, type CaseStatus } from '../../harness/conformance/results.js';
import { fixtureParts, summaryRows, type SummaryRow } from './table.js';

/** The axes of a case a team groups by: its kind (load, layout, refuse, request, golden), model type and layout. */
export interface CaseGroup {
  kind: string;
  model: string;
  layout: string;
}

export function groupOf(id: CaseId): CaseGroup {
  return { kind: id.test, model: param(id, 'model') ?? fixtureParts(param(id, 'fixture'))?.model ?? '-', layout: param(id, 'layout') ?? '-' };
}

export const groupLabel = (g: CaseGroup): string => `${g.kind} ${g.model} ${g.layout}`;

/** The summary by kind × model type × layout (dtypes and parallel settings folded): one row per group. */
export function groupRows(results: readonly CaseResult[]): SummaryRow[] {
  return summaryRows(results, new Set(['dtype', 'parallel']));
}

/** `3 pass, 1 fail` for a row's counts (statuses with a count only). */
export function countsText(counts: Record<CaseStatus, number>): string {
  return CASE_STATUSES.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`).join(', ') || 'none';
}

export interface Coverage {
  kind: string;
  types: string[];
  layouts: string[];
  /** Distinct `type/layout` pairs run. */
  pairs: number;
  /** Distinct defects (refuse) or invalid requests (request) run. */
  variants: string[];
}

const GENERATED = ['load', 'layout', 'refuse', 'request', 'golden'];

/** Per kind of case: the model types, layouts and type × layout pairs actually run (skipped cases excluded). */
export function coverage(results: readonly CaseResult[]): Coverage[] {
  const by = new Map<string, { types: Set<string>; layouts: Set<string>; pairs: Set<string>; variants: Set<string> }>();
  for (const r of results) {
    if (r.status === 'skip') continue;
    const id = parseCaseId(r.id);
    const g = groupOf(id);
    const c = by.get(g.kind) ?? { types: new Set(), layouts: new Set(), pairs: new Set(), variants: new Set() };
    c.types.add(g.model);
    c.layouts.add(g.layout);
    c.pairs.add(`${g.model}/${g.layout}`);
    const variant = param(id, 'broken') ?? param(id, 'bad');
    if (variant !== undefined) c.variants.add(variant);
    by.set(g.kind, c);
  }
  const order = (k: string) => (GENERATED.includes(k) ? GENERATED.indexOf(k) : GENERATED.length);
  return [...by.entries()]
    .sort(([a], [b]) => order(a) - order(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map(([kind, c]) => ({ kind, types: [...c.types].sort(), layouts: [...c.layouts].sort(), pairs: c.pairs.size, variants: [...c.variants].sort() }));
}

/**
 * One line per kind, e.g. `refuse: 20 model types × 2 layouts (38 pairs), 6 defects`, and a
 * line naming the model types that were run but got no refusal case (refuse or request).
 */
export function coverageLines(results: readonly CaseResult[]): string[] {
  const cov = coverage(results);
  const lines = cov.map((c) => {
    const variants = c.variants.length ? `, ${c.variants.length} ${c.kind === 'refuse' ? 'defects' : 'invalid requests'} (${c.variants.join(', ')})` : '';
    return `${c.kind}: ${c.types.length} model types × ${c.layouts.length} layouts (${c.pairs} type × layout pairs)${variants}`;
  });
  const all = new Set(cov.flatMap((c) => c.types));
  const refused = new Set(cov.filter((c) => c.kind === 'refuse').flatMap((c) => c.types));
  const without = [...all].filter((t) => t !== '-' && !refused.has(t)).sort();
  if (cov.some((c) => c.kind === 'load' || c.kind === 'refuse') && without.length) lines.push(`no refuse case for: ${without.join(', ')}`);
  return lines;
}
