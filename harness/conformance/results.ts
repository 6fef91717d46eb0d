// What a conformance run produces: one record per case. Reporters read only these, so a
// merged set of `--shard` outputs reports exactly like a single run.
import { MoeConformanceError, showValue } from '../errors.js';
import type { CaseId } from './case-id.js';
import type { Diagnosis } from '../compare/diagnose.js';
import type { CaseNeeds } from './capabilities.js';

/**
 * `inconclusive`: a refusal case whose control (the valid twin of the broken checkpoint or
 * request) was refused too, so the refusal proves nothing. Never a pass, never a failure.
 */
export type CaseStatus = 'pass' | 'warn' | 'fail' | 'skip' | 'xfail' | 'unexpected-pass' | 'inconclusive';

/** Every status, in report column order. */
export const CASE_STATUSES: readonly CaseStatus[] = ['pass', 'warn', 'fail', 'skip', 'xfail', 'unexpected-pass', 'inconclusive'];

export interface CaseFailure {
  message: string;
  /** First mismatching tensor, where there is one. */
  tensor?: string;
  expected?: string;
  found?: string;
  /** Error by expert (rows) × output row (columns), for the HTML heat map. */
  heatmap?: number[][];
  /** What the heat map's rows and columns are, when not expert × row (e.g. token × column). */
  heatmapAxes?: [string, string];
  /** The loader call that failed: `TP rank 0/2, EP rank 1/3 linear`. */
  rank?: string;
  /** The layout of the checkpoint that call read (for layout-comparison cases, which one). */
  layout?: string;
  /** Refusal cases: the defect made and the tensors (or file) it was made on. */
  defect?: string;
  /** Where --keep-failures kept the case's files (they exist after the run). */
  kept?: string;
  /** The heat map's row labels where they are not 0, 1, 2, ...: the global expert id of each slot. */
  heatmapRows?: number[];
  /**
   * What the loader did wrong, as found by harness/compare/diagnose.ts: one entry per
   * mismatching tensor (or part of one), most telling first; JSON results carry it as
   * `failure.diagnosis` (spec/loader-protocol.md §6).
   */
  diagnosis?: Diagnosis[];
}

export interface CaseResult {
  /** The printed case ID (case-id.ts). */
  id: string;
  status: CaseStatus;
  durationMs: number;
  seed?: number;
  /** A shell command that runs this one case again. */
  replay: string;
  /** Why a case warned, was skipped or was expected to fail. */
  note?: string;
  failure?: CaseFailure;
  /** The tail of the loader's stderr over the case's calls, whatever the outcome (warnings too). */
  stderr?: string;
}

/** Statuses that make a run fail. `xfail` is an expected failure and does not. */
export function isFailing(status: CaseStatus): boolean {
  return status === 'fail' || status === 'unexpected-pass';
}

/** The failure record of a thrown error: typed errors keep their tensor and expected/found. */
export function failureOf(e: unknown): CaseFailure {
  if (e instanceof MoeConformanceError) {
    return {
      message: `${e.name}: ${e.message}`,
      ...(e.tensor !== undefined && { tensor: e.tensor }),
      ...(e.expected !== undefined && { expected: showValue(e.expected) }),
      ...(e.found !== undefined && { found: showValue(e.found) }),
    };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return { message: `${err.name}: ${err.message}` };
}

export interface StatusCounts {
  pass: number;
  warn: number;
  fail: number;
  skip: number;
  xfail: number;
  'unexpected-pass': number;
  inconclusive: number;
}

export function countStatuses(results: Iterable<CaseResult>): StatusCounts {
  const c: StatusCounts = { pass: 0, warn: 0, fail: 0, skip: 0, xfail: 0, 'unexpected-pass': 0, inconclusive: 0 };
  for (const r of results) c[r.status]++;
  return c;
}

/** The note of a case skipped because the loader does not declare what the case needs (capabilities.ts). */
export const NOT_DECLARED = 'not declared: ';

/** Why a case was skipped as not declared, or undefined for any other result. */
export function undeclaredOf(r: CaseResult): string | undefined {
  return r.status === 'skip' && r.note?.startsWith(NOT_DECLARED) ? r.note.slice(NOT_DECLARED.length) : undefined;
}

/** What a case's own code decides; the runner turns it into a CaseResult. `stderr`: the loader's stderr tail. */
export type CaseOutcome = (
  | { status: 'pass' }
  | { status: 'warn'; note: string }
  | { status: 'fail'; failure: CaseFailure }
  | { status: 'inconclusive'; note: string }
) & { stderr?: string };

export interface ConformanceCase {
  id: CaseId;
  seed?: number;
  replay: string;
  /** What the loader must support for this case; a case outside its declared capabilities is skipped. */
  needs?: CaseNeeds;
  /** Throwing is a failure too; `signal` aborts when the case runs past its time. */
  run(signal: AbortSignal): Promise<CaseOutcome>;
}
