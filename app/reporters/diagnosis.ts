// The diagnosis as every report shows it (harness/compare/diagnose.ts finds it): a case's
// findings one per line, and the run's failures counted by the kind of their first finding.
import { countKinds, type Diagnosis } from '../../harness/compare/diagnose.js';
import type { CaseResult } from '../../harness/conformance/results.js';

/** "[gate-up-swapped] layers.0.experts.w13: experts 0–7: gate and up halves swapped". */
export function diagnosisLine(d: Diagnosis): string {
  return `[${d.kind}] ${d.tensor ? `${d.tensor}: ` : ''}${d.detail}`;
}

/** "25 failed: 19 gate-up-swapped, 6 expert-permutation", or undefined when nothing failed. */
export function diagnosisSummary(results: readonly CaseResult[]): string | undefined {
  const failed = results.filter((r) => r.status === 'fail');
  if (failed.length === 0) return undefined;
  return `${failed.length} failed: ${countKinds(failed.map((r) => r.failure?.diagnosis)).map(([k, n]) => `${n} ${k}`).join(', ')}`;
}
