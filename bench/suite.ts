// Suite throughput: how many conformance cases per second the harness gets through.
// In process (`moe-conformance run`, the reference loader without process spawns), and
// through the protocol's command interface (`moe-conformance check`) with two loaders on
// the same sampled cases: our reference loader as a command, and the Python example
// loader built on transformers (examples/python/hf_transformers_loader.py) as the peer.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readResults } from '../app/reporters/json.js';
import { fmt, hostInfo, python, REPO_DIR, runProcess, writeResult } from './common.js';

export interface SuiteOptions {
  /** Generated cases of the in-process run. */
  runCases: number;
  /** Generated cases of each command-loader run (each case calls the loader once per rank). */
  checkCases: number;
  seed: number;
  jobs: number;
}

interface SuiteRow {
  mode: string;
  loader: string;
  cases?: number;
  /** Cases by status (pass, warn, fail, ...). */
  statuses?: Record<string, number>;
  seconds?: number;
  casesPerSecond?: number;
  exitCode?: number;
  error?: string;
}

const CLI = ['--import', 'tsx', join(REPO_DIR, 'app', 'cli', 'main.ts')];

async function timedSuite(mode: string, loader: string, args: string[]): Promise<SuiteRow> {
  const report = join(tmpdir(), `moe-bench-suite-${process.pid}-${mode}-${loader.replace(/\W+/g, '_')}.json`);
  try {
    const r = await runProcess(process.execPath, [...CLI, ...args, '--report', 'json', report], 30 * 60_000);
    const results = await readResults(report).catch(() => undefined);
    if (!results) return { mode, loader, exitCode: r.code, error: r.stderr.trim().split('\n').slice(-3).join(' | ') };
    const seconds = r.ms / 1000;
    return {
      mode, loader, cases: results.length, statuses: countBy(results.map((c) => c.status)),
      seconds, casesPerSecond: results.length / seconds, exitCode: r.code,
    };
  } finally {
    await rm(report, { force: true });
  }
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

export async function benchSuite(o: SuiteOptions): Promise<{ rows: SuiteRow[]; file: string }> {
  const common = ['--seed', String(o.seed), '--jobs', String(o.jobs)];
  const check = (loader: string) => ['check', '--loader', loader, '--cases', String(o.checkCases), ...common];
  const ours = `${process.execPath} ${CLI.join(' ')} load`;
  const peer = `${python()} ${join(REPO_DIR, 'examples', 'python', 'hf_transformers_loader.py')}`;
  const rows: SuiteRow[] = [];
  for (const [mode, loader, args] of [
    ['run (in process)', 'reference', ['run', '--cases', String(o.runCases), ...common]],
    ['check (command)', 'reference (moe-conformance load)', check(ours)],
    ['check (command)', 'python transformers example', check(peer)],
  ] as const) {
    const row = await timedSuite(mode, loader, [...args]);
    rows.push(row);
    console.error(suiteTable([row]).split('\n').pop());
  }
  const file = await writeResult('suite', { benchmark: 'suite', options: o, host: await hostInfo(), rows });
  return { rows, file };
}

export function suiteTable(rows: SuiteRow[]): string {
  const lines = ['| mode | loader | cases | statuses | seconds | cases/s |', '| --- | --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    if (r.error !== undefined) lines.push(`| ${r.mode} | ${r.loader} | – | – | – | failed (exit ${r.exitCode}): ${r.error} |`);
    else lines.push(`| ${r.mode} | ${r.loader} | ${r.cases} | ${Object.entries(r.statuses!).map(([k, v]) => `${k} ${v}`).join(', ')} | ${fmt(r.seconds!)} | ${fmt(r.casesPerSecond!, 2)} |`);
  }
  return lines.join('\n');
}
