// JUnit XML, the format every CI system shows: one <testsuite> per suite:test, one
// <testcase> per case ID. Text from loaders (stderr) can hold anything, so everything is
// escaped and characters that XML 1.0 forbids are replaced.
import { parseCaseId } from '../../harness/conformance/case-id.js';
import type { CaseResult } from '../../harness/conformance/results.js';
import { loaderFacts, type RunInfo } from './declared.js';

export function junitReport(results: readonly CaseResult[], name = 'moe-conformance', run: RunInfo = {}): string {
  const suites = new Map<string, CaseResult[]>();
  for (const r of results) {
    const id = parseCaseId(r.id);
    const key = `${id.suite}.${id.test}`;
    suites.set(key, [...(suites.get(key) ?? []), r]);
  }
  const count = (rs: readonly CaseResult[]) => ({
    tests: rs.length,
    failures: rs.filter((r) => r.status === 'fail' || r.status === 'unexpected-pass').length,
    skipped: rs.filter((r) => r.status === 'skip' || r.status === 'xfail').length,
    time: rs.reduce((s, r) => s + r.durationMs, 0) / 1000,
  });
  const attrs = (o: Record<string, string | number>) =>
    Object.entries(o)
      .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
      .join('');

  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites${attrs({ name, ...count(results) })}>`];
  for (const [suite, rs] of suites) {
    lines.push(`  <testsuite${attrs({ name: suite, ...count(rs) })}>`);
    // The loader's declaration, where CI systems show a suite's properties.
    if (run.loader) lines.push('    <properties>', ...loaderFacts(run.loader).map(([k, v]) => `      <property${attrs({ name: k, value: v })}/>`), '    </properties>');
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
    const parts = [f?.message ?? ''];
    if (f?.tensor !== undefined) parts.push(`tensor: ${f.tensor}`);
    if (f?.expected !== undefined) parts.push(`expected: ${f.expected}`);
    if (f?.found !== undefined) parts.push(`found: ${f.found}`);
    if (r.seed !== undefined) parts.push(`seed: ${r.seed}`);
    parts.push(`replay: ${r.replay}`);
    return escapeXml(parts.join('\n'));
  };
  switch (r.status) {
    case 'fail':
    case 'unexpected-pass':
      return [`      <failure message="${escapeXml(firstLine(r.failure?.message ?? r.status))}" type="${r.status}">${details()}</failure>`];
    case 'skip':
      return [`      <skipped message="${escapeXml(r.note ?? 'skipped')}"/>`];
    case 'xfail':
      return [`      <skipped message="${escapeXml(`expected failure: ${r.note ?? ''}`)}"/>`, `      <system-out>${details()}</system-out>`];
    case 'warn':
      return [`      <system-out>${escapeXml(`warning: ${r.note ?? ''}`)}</system-out>`];
    case 'pass':
      return [];
  }
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
