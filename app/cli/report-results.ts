// How check and run end: the --report files written, the terminal report printed, stale
// expectation lines warned about, and the exit code (1 when any case fails).
import type { Expectations } from '../../harness/conformance/expectations.js';
import { writeReports, type ReportFormat } from '../reporters/files.js';
import { terminalReport } from '../reporters/terminal.js';
import { isFailing, type CaseResult } from '../../harness/conformance/results.js';
import type { RunInfo } from '../../harness/conformance/run-info.js';

export interface ReportResultsOptions {
  /** Lines printed before the report (what ran). */
  preface?: string;
  /** The expectations the run used: lines that matched no case are warned about. */
  expectations?: Expectations;
  /** What ran (loader and its declaration, seed, harness, date, machine): every report names it. */
  run?: RunInfo;
}

export async function reportResults(results: readonly CaseResult[], reports: ReadonlyArray<[ReportFormat, string]>, o: ReportResultsOptions = {}): Promise<number> {
  await writeReports(results, reports, o.run);
  if (o.preface !== undefined) process.stdout.write(o.preface);
  process.stdout.write(terminalReport(results, o.run));
  for (const line of o.expectations?.unused() ?? []) process.stderr.write(`warning: ${line}\n`);
  return results.some((r) => isFailing(r.status)) ? 1 : 0;
}
