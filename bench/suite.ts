// Suite throughput: how many conformance cases per second the harness gets through.
// In process (`moe-conformance run`, the reference loader without process spawns), and
// through the protocol (`moe-conformance check`) with two loaders on the same sampled cases,
// each as a command (spec §2, one process per rank) and as a worker (spec §5, one process
// per job): our reference loader, and the Python example loader built on transformers
// (examples/python/hf_transformers_loader.py). For each loader: the worker's speed-up per
// case over the command, and whether both modes gave every case the same status. Last, the
// default `check` (100 cases, every model type, both layouts) of the Python example as a worker.
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
  /** Also time the default check (100 cases) of the Python example as a worker. */
  defaultCheck: boolean;
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
  /** Case ID to status, to compare the two modes of a loader. */
  byCase?: Record<string, string>;
}

interface ModeComparison {
  loader: string;
  cases: number;
  commandSecondsPerCase: number;
  workerSecondsPerCase: number;
  /** Command seconds per case / worker seconds per case. */
  speedup: number;
  /** Every case got the same status in both modes. */
  sameStatuses: boolean;
  differing: string[];
}

const CLI = ['--import', 'tsx', join(REPO_DIR, 'app', 'cli', 'main.ts')];

async function timedSuite(mode: string, loader: string, args: string[], timeoutMs = 30 * 60_000): Promise<SuiteRow> {
  const report = join(tmpdir(), `moe-bench-suite-${process.pid}-${mode}-${loader.replace(/\W+/g, '_')}.json`);
  try {
    const r = await runProcess(process.execPath, [...CLI, ...args, '--report', 'json', report], timeoutMs);
    const results = await readResults(report).catch(() => undefined);
    if (!results) return { mode, loader, exitCode: r.code, error: r.stderr.trim().split('\n').slice(-3).join(' | ') };
    const seconds = r.ms / 1000;
    return {
      mode, loader, cases: results.length, statuses: countBy(results.map((c) => c.status)),
      seconds, casesPerSecond: results.length / seconds, exitCode: r.code, byCase: Object.fromEntries(results.map((c) => [c.id, c.status])),
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

export async function benchSuite(o: SuiteOptions): Promise<{ rows: SuiteRow[]; comparisons: ModeComparison[]; file: string }> {
  const common = ['--seed', String(o.seed), '--jobs', String(o.jobs)];
  // A Python start with torch and transformers takes seconds per rank in command mode: allow it.
  const check = (loader: string, worker: boolean) => ['check', '--loader', loader, '--cases', String(o.checkCases), '--timeout', '300', ...common, ...(worker ? ['--worker'] : [])];
  const ours = `${process.execPath} ${CLI.join(' ')} load`;
  const peer = `${python()} ${join(REPO_DIR, 'examples', 'python', 'hf_transformers_loader.py')}`;
  const REF = 'reference (moe-conformance load)';
  const PY = 'python transformers example';
  const rows: SuiteRow[] = [];
  const runs: Array<[string, string, string[]]> = [
    ['run (in process)', 'reference', ['run', '--cases', String(o.runCases), ...common]],
    ['check (command)', REF, check(ours, false)],
    ['check (worker)', REF, check(ours, true)],
    ['check (worker)', PY, check(peer, true)],
    ...(o.defaultCheck ? [['check (worker), default 100 cases', PY, ['check', '--loader', peer, '--worker']] as [string, string, string[]]] : []),
    // Last: the slowest by far (a Python start per rank).
    ['check (command)', PY, check(peer, false)],
  ];
  for (const [mode, loader, args] of runs) {
    const row = await timedSuite(mode, loader, args, 90 * 60_000);
    rows.push(row);
    console.error(suiteTable([row]).split('\n').pop());
  }
  const comparisons = [REF, PY].flatMap((loader) => {
    const command = rows.find((r) => r.loader === loader && r.mode === 'check (command)');
    const worker = rows.find((r) => r.loader === loader && r.mode === 'check (worker)');
    return command?.byCase && worker?.byCase ? [compareModes(loader, command, worker)] : [];
  });
  const file = await writeResult('suite', { benchmark: 'suite', options: o, host: await hostInfo(), rows, comparisons });
  return { rows, comparisons, file };
}

function compareModes(loader: string, command: SuiteRow, worker: SuiteRow): ModeComparison {
  const ids = [...new Set([...Object.keys(command.byCase!), ...Object.keys(worker.byCase!)])].sort();
  const differing = ids.filter((id) => command.byCase![id] !== worker.byCase![id]).map((id) => `${id}: command ${command.byCase![id] ?? 'absent'}, worker ${worker.byCase![id] ?? 'absent'}`);
  const commandSecondsPerCase = command.seconds! / command.cases!;
  const workerSecondsPerCase = worker.seconds! / worker.cases!;
  return { loader, cases: ids.length, commandSecondsPerCase, workerSecondsPerCase, speedup: commandSecondsPerCase / workerSecondsPerCase, sameStatuses: differing.length === 0, differing };
}

export function comparisonTable(rows: ModeComparison[]): string {
  const lines = ['| loader | cases | command s/case | worker s/case | worker speed-up | same statuses |', '| --- | ---: | ---: | ---: | ---: | --- |'];
  for (const c of rows) lines.push(`| ${c.loader} | ${c.cases} | ${fmt(c.commandSecondsPerCase, 2)} | ${fmt(c.workerSecondsPerCase, 2)} | ${fmt(c.speedup, 1)}× | ${c.sameStatuses ? 'yes' : `no: ${c.differing.join('; ')}`} |`);
  return lines.join('\n');
}

export function suiteTable(rows: SuiteRow[]): string {
  const lines = ['| mode | loader | cases | statuses | seconds | cases/s |', '| --- | --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    if (r.error !== undefined) lines.push(`| ${r.mode} | ${r.loader} | – | – | – | failed (exit ${r.exitCode}): ${r.error} |`);
    else lines.push(`| ${r.mode} | ${r.loader} | ${r.cases} | ${Object.entries(r.statuses!).map(([k, v]) => `${k} ${v}`).join(', ')} | ${fmt(r.seconds!)} | ${fmt(r.casesPerSecond!, 2)} |`);
  }
  return lines.join('\n');
}
