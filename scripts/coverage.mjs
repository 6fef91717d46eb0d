#!/usr/bin/env node
// The one coverage report of `npm test`: vitest's in-process V8 coverage (coverage/
// coverage-final.json) merged with what c8 reads from the processes the tests started (the
// CLI, `moe-conformance load` as a loader command), which vitest cannot see. Those children
// wrote raw V8 coverage to coverage/processes (NODE_V8_COVERAGE, set for them by
// scripts/child-coverage.ts). Prints one summary per group of floors and checks the thresholds.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import libCoverage from 'istanbul-lib-coverage';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'coverage');
const PROCESSES = join(OUT, 'processes');

/** Lines and branches, in percent, that each group must reach in the merged report. */
export const THRESHOLDS = [
  { name: 'harness (the floors below the app)', prefix: 'harness/', lines: 95, branches: 90 },
  { name: 'app/cli (the commands, mostly run as processes)', prefix: 'app/cli/', lines: 90, branches: 80 },
  { name: 'everything', prefix: '', lines: 95, branches: 88 },
];

const vitestFile = join(OUT, 'coverage-final.json');
if (!existsSync(vitestFile)) {
  console.error(`coverage: ${relative(ROOT, vitestFile)} is missing: run vitest with --coverage first`);
  process.exit(1);
}
const inProcess = libCoverage.createCoverageMap(JSON.parse(readFileSync(vitestFile, 'utf8')));

let processFiles = 0;
let fromProcesses = libCoverage.createCoverageMap({});
if (existsSync(PROCESSES)) {
  processFiles = readdirSync(PROCESSES).filter((f) => f.endsWith('.json')).length;
  if (processFiles > 0) {
    const reportDir = join(OUT, 'processes-report');
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/c8/bin/c8.js'), 'report', '--temp-directory', PROCESSES, '--reports-dir', reportDir, '--reporter', 'json', '--src', ROOT,
        '--include', 'app/**/*.ts', '--include', 'harness/**/*.ts', '--include', 'kernels/**/*.ts', '--include', 'properties/**/*.ts', '--include', 'golden/**/*.ts',
        '--exclude', '**/*.test.ts', '--exclude', '**/test/**', '--exclude-after-remap'],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const data = JSON.parse(readFileSync(join(reportDir, 'coverage-final.json'), 'utf8'));
    for (const key of Object.keys(data)) if (!key.startsWith(ROOT + '/')) delete data[key];
    fromProcesses = libCoverage.createCoverageMap(data);
  }
}

/**
 * One file's lines and branches from both sources. vitest (AST statements) and c8 (V8 ranges)
 * map a file differently, so their istanbul maps cannot be merged hit for hit: a line counts
 * as covered when either source ran it, over the lines vitest calls executable (c8's where only
 * processes loaded the file); branches come from whichever source covered more of them.
 */
function merged(file) {
  const a = inProcess.data[file] ? inProcess.fileCoverageFor(file) : undefined;
  const b = fromProcesses.data[file] ? fromProcesses.fileCoverageFor(file) : undefined;
  const base = a ?? b;
  const lines = base.getLineCoverage();
  const other = a && b ? b.getLineCoverage() : {};
  let covered = 0;
  let total = 0;
  for (const [line, hits] of Object.entries(lines)) {
    total++;
    if (hits > 0 || (other[line] ?? 0) > 0) covered++;
  }
  const branchesOf = (c) => (c ? c.toSummary().branches : { covered: 0, total: 0 });
  const [ba, bb] = [branchesOf(a), branchesOf(b)];
  const branches = !a ? bb : !b ? ba : (bb.total > 0 && bb.covered / bb.total > (ba.total ? ba.covered / ba.total : 0) ? bb : ba);
  return { lines: { covered, total }, branches: { covered: branches.covered, total: branches.total } };
}

const files = [...new Set([...inProcess.files(), ...fromProcesses.files()])].filter((f) => f.startsWith(ROOT + '/'));
const perFile = Object.fromEntries(files.map((f) => [relative(ROOT, f), merged(f)]));
writeFileSync(join(OUT, 'coverage-summary.json'), JSON.stringify(perFile, null, 1));

const pct = (covered, total) => (total === 0 ? 100 : (100 * covered) / total);
let failed = false;
console.log(`\ncoverage (vitest in process + c8 over ${processFiles} process(es) the tests started; per file in coverage/coverage-summary.json):`);
for (const t of THRESHOLDS) {
  const mine = Object.entries(perFile).filter(([f]) => f.startsWith(t.prefix));
  const sum = (k, w) => mine.reduce((n, [, c]) => n + c[k][w], 0);
  const lines = pct(sum('lines', 'covered'), sum('lines', 'total'));
  const branches = pct(sum('branches', 'covered'), sum('branches', 'total'));
  const ok = lines >= t.lines && branches >= t.branches;
  failed ||= !ok;
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${t.name}: lines ${lines.toFixed(1)}% (>= ${t.lines}), branches ${branches.toFixed(1)}% (>= ${t.branches}), ${mine.length} files`);
}
process.exit(failed ? 1 : 0);
