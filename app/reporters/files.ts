// `--report FORMAT FILE` (repeatable), shared by the commands that run cases: taking the
// option pairs out of an argv, and writing each report.
import { writeFile } from 'node:fs/promises';
import { MoeConformanceError } from '../../harness/errors.js';
import type { CaseResult } from '../../harness/conformance/results.js';
import { htmlReport } from './html.js';
import { jsonReport } from './json.js';
import { junitReport } from './junit.js';
import type { RunInfo } from './declared.js';

export class ReportOptionError extends MoeConformanceError {}

export const REPORT_FORMATS = ['junit', 'json', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Removes every `--report FORMAT FILE` from argv (parseArgs takes one word per option). */
export function takeReportOptions(argv: readonly string[]): { rest: string[]; reports: Array<[ReportFormat, string]> } {
  const rest: string[] = [];
  const reports: Array<[ReportFormat, string]> = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '--report') {
      rest.push(argv[i]!);
      continue;
    }
    const format = argv[i + 1];
    const file = argv[i + 2];
    if (format === undefined || file === undefined || !(REPORT_FORMATS as readonly string[]).includes(format)) {
      throw new ReportOptionError(`--report takes FORMAT FILE with FORMAT one of ${REPORT_FORMATS.join(', ')}`, { expected: 'junit|json|html FILE', found: [format, file].filter((x) => x !== undefined).join(' ') });
    }
    reports.push([format as ReportFormat, file]);
    i += 2;
  }
  return { rest, reports };
}

export async function writeReports(results: readonly CaseResult[], reports: ReadonlyArray<[ReportFormat, string]>, run: RunInfo = {}): Promise<void> {
  for (const [format, file] of reports) {
    const text = format === 'junit' ? junitReport(results, undefined, run) : format === 'json' ? jsonReport(results, run) : htmlReport(results, undefined, run);
    try {
      await writeFile(file, text);
    } catch (e) {
      throw new ReportOptionError(`cannot write the ${format} report: ${(e as Error).message}`, { file });
    }
  }
}
