// Results as JSON, one record per case, and the merge of several `--shard` outputs into
// one set (`check --merge a.json b.json --report html out.html`).
import { readFile } from 'node:fs/promises';
import { MoeConformanceError } from '../../harness/errors.js';
import { parseCaseId } from '../../harness/conformance/case-id.js';
import type { CaseResult, CaseStatus } from '../../harness/conformance/results.js';
import { parseCapabilities, type DeclaredLoader } from '../../harness/conformance/capabilities.js';
import type { RunInfo } from './declared.js';

export class ResultsFileError extends MoeConformanceError {}

export const RESULTS_FORMAT = 'moe-conformance-results';
export const RESULTS_VERSION = 1;

export interface ResultsFile {
  format: typeof RESULTS_FORMAT;
  version: typeof RESULTS_VERSION;
  results: CaseResult[];
  /** The loader as it declared itself (name, version, mode, capabilities with forms); absent for older files. */
  loader?: DeclaredLoader;
}

export function jsonReport(results: readonly CaseResult[], run: RunInfo = {}): string {
  const file: ResultsFile = { format: RESULTS_FORMAT, version: RESULTS_VERSION, ...(run.loader && { loader: run.loader }), results: [...results] };
  // JSON has no NaN or Infinity, and a NaN in a heat map is a finding: keep it as a string.
  return JSON.stringify(file, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 1) + '\n';
}

const STATUSES: ReadonlySet<CaseStatus> = new Set(['pass', 'warn', 'fail', 'skip', 'xfail', 'unexpected-pass']);

export function parseResults(text: string, file?: string): CaseResult[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ResultsFileError(`not JSON: ${(e as Error).message}`, { file });
  }
  const f = data as Partial<ResultsFile> | null;
  if (f?.format !== RESULTS_FORMAT || f.version !== RESULTS_VERSION || !Array.isArray(f.results)) {
    throw new ResultsFileError('not a results file', { file, expected: `{format: "${RESULTS_FORMAT}", version: ${RESULTS_VERSION}, results: [...]}`, found: JSON.stringify(data).slice(0, 80) });
  }
  f.results.forEach((r: unknown, i) => {
    const c = r as Partial<CaseResult> | null;
    if (typeof c?.id !== 'string' || !STATUSES.has(c.status as CaseStatus) || typeof c.durationMs !== 'number' || typeof c.replay !== 'string') {
      throw new ResultsFileError(`record ${i} is not a case result`, { file, expected: '{id, status, durationMs, replay}', found: JSON.stringify(r).slice(0, 120) });
    }
    if (c.failure?.heatmap) c.failure.heatmap = c.failure.heatmap.map((row) => row.map(Number));
    try {
      parseCaseId(c.id);
    } catch (e) {
      throw new ResultsFileError(`record ${i}: ${(e as Error).message}`, { file });
    }
  });
  return f.results;
}

export async function readResults(file: string): Promise<CaseResult[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ResultsFileError(`cannot read results: ${(e as Error).message}`, { file });
  }
  return parseResults(text, file);
}

/** The loader's declaration a results file records (absent in older files), for reports of merged shards. */
export async function readRunInfo(file: string): Promise<RunInfo> {
  const f = JSON.parse(await readFile(file, 'utf8')) as Partial<ResultsFile>;
  const l = f.loader;
  if (!l || typeof l.name !== 'string' || !['worker', 'command', 'in-process'].includes(l.mode)) return {};
  const capabilities = l.capabilities !== undefined ? parseCapabilities(l.capabilities, `${file}: loader.capabilities`) : undefined;
  return { loader: { name: l.name, mode: l.mode, ...(typeof l.version === 'string' && { version: l.version }), ...(capabilities && { capabilities }) } };
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
