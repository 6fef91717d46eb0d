// Two runs compared (`moe-conformance diff BASE.json NEW.json`): the cases whose status
// changed, and the cases only one run has, grouped by kind × model type × layout like every
// report's summary, each with the reason of its new status (or of the old failure it lost).
import { parseCaseId } from '../../harness/conformance/case-id.js';
import { isFailing, type CaseResult, type CaseStatus } from '../../harness/conformance/results.js';
import { groupLabel, groupOf } from './coverage.js';
import { groupBy } from './group.js';

export interface StatusChange {
  id: string;
  /** undefined: the case is only in the other run. */
  before?: CaseStatus;
  after?: CaseStatus;
  /** The new status's reason (failure message, note), or what the old failure was. */
  reason: string;
  worse: boolean;
}

export interface DiffGroup {
  label: string;
  changes: StatusChange[];
}

export interface ResultsDiff {
  common: number;
  changed: number;
  worse: number;
  better: number;
  onlyBase: number;
  onlyNew: number;
  groups: DiffGroup[];
}

/** How good a status is, for "worse" and "better": failing < inconclusive < skipped < passing. */
function rank(s: CaseStatus): number {
  if (isFailing(s)) return 0;
  if (s === 'inconclusive') return 1;
  if (s === 'skip') return 2;
  return 3; // pass, warn, xfail (an expected failure keeps a run green)
}

const firstLine = (s: string) => s.split('\n', 1)[0]!;

function reasonOf(r: CaseResult | undefined): string {
  if (!r) return '';
  const f = r.failure;
  const parts = [f ? firstLine(f.message) : r.note ?? ''];
  if (f?.rank) parts.push(`rank: ${f.rank}`);
  if (f?.layout) parts.push(`layout: ${f.layout}`);
  if (f?.tensor) parts.push(`tensor: ${f.tensor}`);
  if (f?.defect) parts.push(`defect: ${f.defect}`);
  if (f?.diagnosis?.length) parts.push(`diagnosis: ${[...new Set(f.diagnosis.map((d) => d.kind))].join(', ')}`);
  return parts.filter((p) => p !== '').join('; ');
}

export function diffResults(base: readonly CaseResult[], next: readonly CaseResult[]): ResultsDiff {
  const before = new Map(base.map((r) => [r.id, r]));
  const after = new Map(next.map((r) => [r.id, r]));
  const changes: StatusChange[] = [];
  let common = 0;
  for (const [id, a] of after) {
    const b = before.get(id);
    if (b) common++;
    if (b && b.status === a.status) continue;
    const worse = b !== undefined && rank(a.status) < rank(b.status);
    const reason = b && rank(a.status) > rank(b.status) ? `was: ${reasonOf(b)}` : reasonOf(a);
    changes.push({ id, ...(b && { before: b.status }), after: a.status, reason, worse });
  }
  for (const [id, b] of before) if (!after.has(id)) changes.push({ id, before: b.status, reason: reasonOf(b), worse: false });
  const groups = groupBy(changes, (c) => groupLabel(groupOf(parseCaseId(c.id))));
  const inBoth = changes.filter((c) => c.before !== undefined && c.after !== undefined);
  return {
    common,
    changed: inBoth.length,
    worse: inBoth.filter((c) => c.worse).length,
    better: inBoth.filter((c) => rank(c.after!) > rank(c.before!)).length,
    onlyBase: changes.filter((c) => c.after === undefined).length,
    onlyNew: changes.filter((c) => c.before === undefined).length,
    groups: groups
      .map(([label, cs]) => ({ label, changes: cs.sort((x, y) => Number(y.worse) - Number(x.worse) || (x.id < y.id ? -1 : 1)) }))
      .sort((x, y) => Number(y.changes.some((c) => c.worse)) - Number(x.changes.some((c) => c.worse)) || (x.label < y.label ? -1 : 1)),
  };
}

export function diffText(d: ResultsDiff, baseName = 'BASE', newName = 'NEW'): string {
  const out = [
    `${baseName} → ${newName}: ${d.common} cases in both, ${d.changed} changed status (${d.worse} worse, ${d.better} better), ${d.onlyBase} only in ${baseName}, ${d.onlyNew} only in ${newName}`,
  ];
  for (const g of d.groups) {
    out.push('', `${g.label}: ${g.changes.length} changed${g.changes.some((c) => c.worse) ? ` (${g.changes.filter((c) => c.worse).length} worse)` : ''}`);
    for (const c of g.changes) {
      out.push(`  ${c.before ?? '(absent)'} → ${c.after ?? '(absent)'}${c.worse ? '  WORSE' : ''}  ${c.id}`);
      if (c.reason) out.push(`      ${c.reason}`);
    }
  }
  return out.join('\n') + '\n';
}
