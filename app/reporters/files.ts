// `--report FORMAT FILE` (repeatable), shared by the commands that run cases: the formats,
// and writing each report.
import { writeFile } from 'node:fs/promises';
import { MoeConformanceError } from '../../harness/errors.js';
import type { CaseResult } from '../../harness/conformance/results.js';
import type { RunInfo } from '../../harness/conformance/run-info.js';
import { htmlReport } from './html.js';
import { jsonReport } from './json.js';
import { junitReport } from './junit.js';

export class ReportOptionError extends MoeConformanceError {}

export const REPORT_FORMATS = ['junit', 'json', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export async function writeReports(results: readonly CaseResult[], reports: ReadonlyArray<[ReportFormat, string]>, run?: RunInfo): Promise<void> {
  for (const [format, file] of reports) {
    const text = format === 'junit' ? junitReport(results, undefined, run) : format === 'json' ? jsonReport(results, run) : htmlReport(results, undefined, run);
    try {
      await writeFile(file, text);
    } catch (e) {
      throw new ReportOptionError(`cannot write the ${format} report: ${(e as Error).message}`, { file });
    }
  }
}
