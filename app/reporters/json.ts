// Results as JSON, one record per case, and the merge of several `--shard` outputs into
// one set (`check --merge a.json b.json --report html out.html`).
import { MoeConformanceError } from '../../harness/errors.js';
import { parseCaseId } from '../../harness/conformance/case-id.js';
import { readBoundedFileAs } from '../../harness/safetensors/bounded-read.js';
import { JsonSyntaxError, parseStrictJson, toPlain } from '../../harness/safetensors/json.js';
import { CASE_STATUSES, type CaseResult, type CaseStatus } from '../../harness/conformance/results.js';
import { countsText, coverageLines, groupRows } from './coverage.js';
import type { RunInfo } from '../../harness/conformance/run-info.js';
import { parseCapabilities, type DeclaredLoader } from '../../harness/conformance/capabilities.js';

export class ResultsFileError extends MoeConformanceError {}

export const RESULTS_FORMAT = 'moe-conformance-results';
export const RESULTS_VERSION = 1;

export interface ResultsFile {
  format: typeof RESULTS_FORMAT;
  version: typeof RESULTS_VERSION;
  /** What ran (spec/loader-protocol.md §6); absent in files written before it existed. */
  run?: RunInfo;
  results: CaseResult[];
  /** For people reading the file: counts by kind × model type × layout, and what the run covered (ignored when read back). */
  summary?: Array<{ kind: string; model: string; layout: string; cases: string }>;
  coverage?: string[];
}

export function jsonReport(results: readonly CaseResult[], run?: RunInfo): string {
  const summary = groupRows(results).map((g) => ({ kind: g.check, model: g.model, layout: g.layout, cases: countsText(g.counts) }));
  const file: ResultsFile = { format: RESULTS_FORMAT, version: RESULTS_VERSION, ...(run && { run }), summary, coverage: coverageLines(results), results: [...results] };
  // JSON has no NaN or Infinity, and a NaN in a heat map is a finding: keep it as a string.
  return JSON.stringify(file, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 1) + '\n';
}

const STATUSES: ReadonlySet<CaseStatus> = new Set(CASE_STATUSES);

/** The largest results file `--merge` reads (spec §5). */
export const RESULTS_MAX_BYTES = 64 << 20;

const isStr = (v: unknown) => typeof v === 'string';
const optional = (v: unknown, ok: (v: unknown) => boolean) => v === undefined || ok(v);
/** Heat map cells are numbers, or the strings jsonReport writes for NaN and infinities. */
const isHeatmap = (v: unknown) => Array.isArray(v) && v.every((row) => Array.isArray(row) && row.every((x) => typeof x === 'number' || x === 'NaN' || x === 'Infinity' || x === '-Infinity'));

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumbers = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number');
/**
 * A diagnosis kind's name (DIAGNOSIS_KINDS, or a newer harness's): lowercase words joined by
 * '-', at most 64 characters. Summaries count failures by kind in a Map, and 3,000 distinct
 * kinds of 16,400 characters (hashed by their length alone in V8) took 15.8 s there.
 */
const isKindName = (v: unknown) => typeof v === 'string' && v.length <= 64 && /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(v);
/** A diagnosis entry (harness/compare/diagnose.ts Diagnosis): every report prints its kind, tensor and detail. */
const isDiagnosis = (d: unknown) => isRecord(d) && isStr(d.tensor) && isKindName(d.kind) && isStr(d.detail) && optional(d.map, isNumbers);

/** Every field of a CaseFailure with its type: a report reads each, and a number where a string belongs crashed them (TypeError). */
function isFailure(v: unknown): boolean {
  if (!isRecord(v)) return false;
  const f = v;
  return (
    isStr(f.message) &&
    [f.tensor, f.expected, f.found, f.rank, f.layout, f.defect, f.kept].every((x) => optional(x, isStr)) &&
    optional(f.heatmap, isHeatmap) &&
    optional(f.heatmapAxes, (a) => Array.isArray(a) && a.length === 2 && a.every(isStr)) &&
    optional(f.heatmapRows, isNumbers) &&
    optional(f.diagnosis, (d) => Array.isArray(d) && d.every(isDiagnosis))
  );
}

/** The first characters of a value, for messages (the value is at most 127 deep: the strict parser's limit). */
const preview = (v: unknown, n: number) => (JSON.stringify(v) ?? String(v)).slice(0, n);

export function parseResults(input: string | Uint8Array, file?: string): CaseResult[] {
  let data: unknown;
  try {
    data = toPlain(parseStrictJson(input, { file }));
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new ResultsFileError(`not JSON: ${e.reason}`, { file, ...(e.expected !== undefined && { expected: e.expected }), ...(e.found !== undefined && { found: e.found }) });
  }
  const f = data as Partial<ResultsFile> | null;
  if (f?.format !== RESULTS_FORMAT || f.version !== RESULTS_VERSION || !Array.isArray(f.results)) {
    throw new ResultsFileError('not a results file', { file, expected: `{format: "${RESULTS_FORMAT}", version: ${RESULTS_VERSION}, results: [...]}`, found: preview(data, 80) });
  }
  f.results.forEach((r: unknown, i) => {
    const c = r as Partial<CaseResult> | null;
    if (typeof c?.id !== 'string' || !STATUSES.has(c.status as CaseStatus) || typeof c.durationMs !== 'number' || typeof c.replay !== 'string' || !optional(c.seed, (s) => typeof s === 'number') || !optional(c.note, isStr) || !optional(c.stderr, isStr) || !optional(c.failure, isFailure)) {
      throw new ResultsFileError(`record ${i} is not a case result`, {
        file,
        expected: '{id, status, durationMs, replay, seed?, note?, stderr?, failure?: {message, tensor?, expected?, found?, rank?, layout?, defect?, kept?, heatmap?, heatmapAxes?, heatmapRows?, diagnosis?: [{tensor, kind (a-kind-name), detail, map?}]}}',
        found: preview(r, 120),
      });
    }
    if (c.failure?.heatmap) c.failure.heatmap = c.failure.heatmap.map((row) => row.map(Number));
    try {
      parseCaseId(c.id);
    } catch (e) {
      if (!(e instanceof MoeConformanceError)) throw e;
      // The ID's refusal as fields (expected, found), the file and record added.
      throw new ResultsFileError(`record ${i}: ${e.reason}`, { file, ...(e.expected !== undefined && { expected: e.expected }), ...(e.found !== undefined && { found: e.found }) });
    }
  });
  return f.results;
}

/** The run information of a results file, where it has one. */

export async function readResults(file: string): Promise<CaseResult[]> {
  const bytes = await readBoundedFileAs(file, RESULTS_MAX_BYTES, ResultsFileError, 'cannot read results');
  return parseResults(bytes, file);
}

/**
 * What ran, as a results file records it (absent in older files), for the report of merged
 * shards: they ran one loader with one seed, so the first file's stands for all. Read with the
 * same size limit and strict grammar as the results; a declaration is checked by the
 * capabilities parser.
 */
export async function readRunInfo(file: string): Promise<RunInfo | undefined> {
  const bytes = await readBoundedFileAs(file, RESULTS_MAX_BYTES, ResultsFileError, 'cannot read results');
  const top = toPlain(parseStrictJson(bytes, { file })) as Partial<ResultsFile> | null;
  const r = top?.run as Partial<RunInfo> | undefined;
  if (!r || typeof r.loader !== 'string' || typeof r.harnessVersion !== 'string' || typeof r.date !== 'string' || typeof r.machine !== 'string') return undefined;
  const d = r.declared as Partial<DeclaredLoader> | undefined;
  const declared: DeclaredLoader | undefined =
    d && typeof d.name === 'string' && (d.mode === 'worker' || d.mode === 'command' || d.mode === 'in-process')
      ? { name: d.name, mode: d.mode, ...(typeof d.version === 'string' && { version: d.version }), ...(d.capabilities !== undefined && { capabilities: parseCapabilities(d.capabilities, `${file}: run.declared.capabilities`) }) }
      : undefined;
  return {
    loader: r.loader,
    harnessVersion: r.harnessVersion,
    date: r.date,
    machine: r.machine,
    ...(typeof r.loaderName === 'string' && { loaderName: r.loaderName }),
    ...(typeof r.loaderVersion === 'string' && { loaderVersion: r.loaderVersion }),
    ...(typeof r.seed === 'number' && { seed: r.seed }),
    ...(declared && { declared }),
  };
}

/**
 * Shards partition the cases, so a case ID in two inputs means the inputs overlap (the
 * same shard twice, or runs with different case lists): refused rather than guessed.
 */
export function mergeResults(sets: ReadonlyArray<{ file: string; results: readonly CaseResult[] }>): CaseResult[] {
  const seen = new Map<string, string>();
  const merged: CaseResult[] = [];
  for (const { file, results } of sets) {
    for (const r of results) {
      const other = seen.get(r.id);
      if (other !== undefined) throw new ResultsFileError(`case ${r.id} appears in two result files`, { file, expected: 'disjoint shards', found: `also in ${other}` });
      seen.set(r.id, file);
      merged.push(r);
    }
  }
  return merged.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
