// JUnit XML, the format every CI system shows: one <testsuite> per suite:test, one
// <testcase> per case ID. Text from loaders (stderr) can hold anything, so everything is
// escaped and characters that XML 1.0 forbids are replaced. A failure's message leads with
// its diagnosis (what the loader did wrong); each suite's properties say what ran.
import { parseCaseId } from '../../harness/conformance/case-id.js';
import type { CaseResult } from '../../harness/conformance/results.js';
import { countsText, coverageLines, groupRows } from './coverage.js';
import { runFacts, type RunInfo } from '../../harness/conformance/run-info.js';
import { diagnosisLine } from './diagnosis.js';

import { loaderFacts } from './declared.js';
import { groupBy } from './group.js';

export function junitReport(results: readonly CaseResult[], name = 'moe-conformance', run?: RunInfo): string {
  const suites = groupBy(results, (r) => {
    const id = parseCaseId(r.id);
    return `${id.suite}.${id.test}`;
  });
  const count = (rs: readonly CaseResult[]) => ({
    tests: rs.length,
    failures: rs.filter((r) => r.status === 'fail' || r.status === 'unexpected-pass').length,
    skipped: rs.filter((r) => r.status === 'skip' || r.status === 'xfail' || r.status === 'inconclusive').length,
    time: rs.reduce((s, r) => s + r.durationMs, 0) / 1000,
  });
  const attrs = (o: Record<string, string | number>) =>
    Object.entries(o)
      .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
      .join('');

  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites${attrs({ name, ...count(results) })}>`];
  const coverage = coverageLines(results);
  for (const [suite, rs] of suites) {
    lines.push(`  <testsuite${attrs({ name: suite, ...count(rs) })}>`);
    // The summary by model type × layout of this kind, and the run's coverage, as properties CI tools show.
    const props = [
      ...(run ? runFacts(run).map(([k, v]) => `      <property${attrs({ name: k, value: v })}/>`) : []),
      ...(run?.declared ? loaderFacts(run.declared).map(([k, v]) => `      <property${attrs({ name: k, value: v })}/>`) : []),
      ...groupRows(rs).map((g) => `      <property${attrs({ name: `${g.check} ${g.model} ${g.layout}`, value: countsText(g.counts) })}/>`),
      ...coverage.map((l, i) => `      <property${attrs({ name: `coverage.${i + 1}`, value: l })}/>`),
    ];
    lines.push('    <properties>', ...props, '    </properties>');
    for (const r of rs) {
      const open = `    <testcase${attrs({ name: r.id, classname: suite, time: r.durationMs / 1000 })}`;
      const inner = caseBody(r);
      lines.push(inner.length ? `${open}>\n${inner.join('\n')}\n    </testcase>` : `${open}/>`);
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return lines.join('\n') + '\n';
}

function caseBody(r: CaseResult): string[] {
  const details = (): string => {
    const f = r.failure;
    const parts = [...(f?.diagnosis ?? []).map(diagnosisLine), f?.message ?? ''];
    if (f?.tensor !== undefined) parts.push(`tensor: ${f.tensor}`);
    if (f?.expected !== undefined) parts.push(`expected: ${f.expected}`);
    if (f?.found !== undefined) parts.push(`found: ${f.found}`);
    if (f?.rank !== undefined) parts.push(`rank: ${f.rank}`);
    if (f?.layout !== undefined) parts.push(`layout: ${f.layout}`);
    if (f?.defect !== undefined) parts.push(`defect: ${f.defect}`);
    if (f?.kept !== undefined) parts.push(`kept: ${f.kept}`);
    if (r.stderr) parts.push(`loader stderr (tail):\n${r.stderr}`);
    if (r.seed !== undefined) parts.push(`seed: ${r.seed}`);
    parts.push(`replay: ${r.replay}`);
    return escapeXml(parts.join('\n'));
  };
  switch (r.status) {
    case 'fail':
    case 'unexpected-pass':
      return [`      <failure message="${escapeXml(failureMessage(r))}" type="${r.status}">${details()}</failure>`];
    case 'skip':
      return [`      <skipped message="${escapeXml(r.note ?? 'skipped')}"/>`];
    case 'xfail':
      return [`      <skipped message="${escapeXml(`expected failure: ${r.note ?? ''}`)}"/>`, `      <system-out>${details()}</system-out>`];
    case 'warn':
      return [`      <system-out>${escapeXml(`warning: ${r.note ?? ''}`)}</system-out>`];
    case 'inconclusive':
      // JUnit has no such status: a skip whose message says so, and a property CI tools can read.
      return [
        '      <properties><property name="status" value="inconclusive"/></properties>',
        `      <skipped message="${escapeXml(`inconclusive: ${r.note ?? ''}`)}"/>`,
      ];
    case 'pass':
      return [];
  }
}

/** The diagnosis first (every finding), then the first line of what differed. */
function failureMessage(r: CaseResult): string {
  const head = (r.failure?.diagnosis ?? []).map(diagnosisLine).join('; ');
  const first = firstLine(r.failure?.message ?? r.status);
  return head ? `${head} — ${first}` : first;
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0]!;
}

/** Escapes markup and replaces what XML 1.0 cannot carry at all (most C0 controls, lone surrogates). */
export function escapeXml(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
