// Issue 18 in the reports: inconclusive is its own status in every format (counted, never a
// pass); each report carries the summary by kind × model type × layout and the coverage;
// failures show rank, layout, defect, kept path and the loader's stderr tail; and
// `moe-conformance diff` groups status changes the same way.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CaseResult } from '../../harness/conformance/results.js';
import { run as diffCommand } from '../cli/commands/diff.js';
import { capture } from '../cli/test/capture.js';
import { coverageLines } from './coverage.js';
import { diffResults, diffText } from './diff.js';
import { htmlReport } from './html.js';
import { jsonReport, parseResults } from './json.js';
import { junitReport } from './junit.js';
import { terminalReport } from './terminal.js';

const m = 'e=4;h=8;i=4;is=0;k=2;g=1;tg=1;layers=1;shards=single';
const results: CaseResult[] = [
  { id: `moe:load:model=mixtral;layout=fused;dtype=f32;${m};tp=1;ep=1;placement=linear`, status: 'pass', durationMs: 5, replay: 'r1', stderr: 'warning: placement fallback' },
  {
    id: `moe:refuse:model=mixtral;layout=original;dtype=f32;${m};broken=missing-expert`,
    status: 'fail',
    durationMs: 5,
    replay: 'r2',
    failure: { message: 'a checkpoint with a missing-expert defect was silently accepted', rank: 'TP rank 0/1, EP rank 0/1 linear', layout: 'original', defect: 'removed model.layers.0.block_sparse_moe.experts.3.w1.weight', kept: '/kept/case' },
    stderr: 'warning: expert 3 missing, zero-filled',
  },
  { id: `moe:refuse:model=dbrx;layout=original;dtype=f32;${m};broken=wrong-shape`, status: 'inconclusive', durationMs: 5, replay: 'r3', note: 'the loader also refused the valid twin: dbrx is not supported' },
  { id: `moe:request:model=olmoe;layout=original;dtype=f32;${m};tp=1;ep=5;placement=linear;bad=ep-too-large`, status: 'pass', durationMs: 5, replay: 'r4' },
];

describe('inconclusive in every report', () => {
  it('terminal: its own column, a section saying why, counted in the totals, never a pass', () => {
    const t = terminalReport(results);
    expect(t).toMatch(/unexpected-pass\s+inconclusive$/m);
    expect(t).toMatch(/refuse\s+dbrx\s+original\s+f32\s+-\s+\.\s+\.\s+\.\s+\.\s+\.\s+\.\s+1/);
    expect(t).toContain('1 inconclusive: the loader refused the valid twin as well');
    expect(t).toContain(`INCONCLUSIVE moe:refuse:model=dbrx`);
    expect(t.trimEnd().split('\n').at(-1)).toBe('4 cases: 2 passed, 0 warned, 1 failed, 0 skipped, 0 expected failures, 0 unexpected passes, 1 inconclusive — FAILED');
  });
  it('JSON round-trips it; JUnit marks it skipped with an inconclusive property; HTML has its section', () => {
    expect(parseResults(jsonReport(results)).map((r) => r.status)).toEqual(results.map((r) => r.status));
    const xml = junitReport(results);
    expect(xml).toContain('<property name="status" value="inconclusive"/>');
    expect(xml).toContain('<skipped message="inconclusive: the loader also refused the valid twin: dbrx is not supported"/>');
    expect(xml).toMatch(/<testsuite name="moe.refuse" tests="2" failures="1" skipped="1"/);
    const html = htmlReport(results);
    expect(html).toContain('<h2 id="inconclusive">Inconclusive (1)</h2>');
    expect(html).toContain('<th>inconclusive</th>');
    expect(html).toContain(', 1 inconclusive</p>');
  });
});

describe('failure facts, summary by kind × type × layout, coverage', () => {
  it('a failure shows its rank, layout, defect, kept folder and the stderr tail', () => {
    const t = terminalReport(results);
    expect(t).toContain('  rank:     TP rank 0/1, EP rank 0/1 linear\n  layout:   original\n  defect:   removed model.layers.0.block_sparse_moe.experts.3.w1.weight\n  kept:     /kept/case\n  loader stderr (tail):\n    warning: expert 3 missing, zero-filled');
    expect(junitReport(results)).toContain('defect: removed model.layers.0.block_sparse_moe.experts.3.w1.weight');
    expect(htmlReport(results)).toContain('loader stderr (tail):\nwarning: expert 3 missing, zero-filled');
    // The stderr of a passing case is in the JSON record, not lost.
    expect(parseResults(jsonReport(results))[0]!.stderr).toBe('warning: placement fallback');
  });
  it('every report carries the coverage and the summary by kind × model type × layout', () => {
    expect(coverageLines(results)).toEqual([
      'load: 1 model types × 1 layouts (1 type × layout pairs)',
      'refuse: 2 model types × 1 layouts (2 type × layout pairs), 2 defects (missing-expert, wrong-shape)',
      'request: 1 model types × 1 layouts (1 type × layout pairs), 1 invalid requests (ep-too-large)',
      'no refuse case for: olmoe',
    ]);
    // A golden fixture's model type is read off its name even where the dtype holds dashes.
    const golden = (fixture: string): CaseResult => ({ id: `moe:golden:fixture=${fixture};layout=fused;tp=1;ep=1;placement=linear`, status: 'pass', durationMs: 1, replay: 'r' });
    const groups = JSON.parse(jsonReport([golden('qwen3_moe-gptq-desc-act'), golden('deepseek_v3-fp8-shared'), golden('mixtral-bf16')])) as { summary: Array<{ model: string }> };
    expect(groups.summary.map((r) => r.model).sort()).toEqual(['deepseek_v3', 'mixtral', 'qwen3_moe']);
    const json = JSON.parse(jsonReport(results)) as { summary: unknown[]; coverage: string[] };
    expect(json.summary).toContainEqual({ kind: 'refuse', model: 'dbrx', layout: 'original', cases: '1 inconclusive' });
    expect(json.coverage[0]).toMatch(/^load: 1 model types/);
    expect(junitReport(results)).toContain('<property name="refuse mixtral original" value="1 fail"/>');
    expect(junitReport(results)).toContain('<property name="coverage.4" value="no refuse case for: olmoe"/>');
    const html = htmlReport(results);
    expect(html).toContain('<li>no refuse case for: olmoe</li>');
    expect(html).toContain('<tr><td>refuse</td><td>dbrx</td><td>original</td><td>1 inconclusive</td></tr>');
    expect(terminalReport(results)).toContain('coverage (cases run):\n  load: 1 model types × 1 layouts');
  });
});

describe('moe-conformance diff', () => {
  const after: CaseResult[] = [
    { ...results[0]!, status: 'fail', failure: { message: 'bytes differ', rank: 'TP rank 1/2, EP rank 0/1 linear', tensor: 'layers.0.experts.w13', diagnosis: [{ tensor: 'layers.0.experts.w13', kind: 'gate-up-swapped', detail: 'experts 0, 3' }, { tensor: 'layers.0.experts.w2', kind: 'not-cut', detail: '' }] } },
    { ...results[1]!, status: 'pass', failure: undefined },
    results[2]!,
    { id: `moe:load:model=olmoe;layout=fused;dtype=f32;${m};tp=1;ep=1;placement=linear`, status: 'pass', durationMs: 1, replay: 'r5' },
  ];
  it('groups status changes by kind × model type × layout, worse first, with reasons', () => {
    const d = diffResults(results, after);
    expect(d).toMatchObject({ common: 3, changed: 2, worse: 1, better: 1, onlyBase: 1, onlyNew: 1 });
    expect(d.groups.map((g) => g.label)).toEqual(['load mixtral fused', 'load olmoe fused', 'refuse mixtral original', 'request olmoe original']);
    const text = diffText(d, 'a.json', 'b.json');
    expect(text).toContain('a.json → b.json: 3 cases in both, 2 changed status (1 worse, 1 better), 1 only in a.json, 1 only in b.json');
    expect(text).toContain('load mixtral fused: 1 changed (1 worse)\n  pass → fail  WORSE  moe:load:model=mixtral');
    // The diagnosis kinds say what the loader did wrong, as every report does.
    expect(text).toContain('      bytes differ; rank: TP rank 1/2, EP rank 0/1 linear; tensor: layers.0.experts.w13; diagnosis: gate-up-swapped, not-cut');
    expect(text).toContain('  fail → pass  moe:refuse:model=mixtral');
    expect(text).toContain('      was: a checkpoint with a missing-expert defect was silently accepted; rank: TP rank 0/1, EP rank 0/1 linear; layout: original; defect: removed');
    expect(text).toContain('  pass → (absent)  moe:request:model=olmoe');
  });
  it('as a command: exit 1 when a case got worse, 0 when none did', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moe-diff-'));
    try {
      writeFileSync(join(dir, 'a.json'), jsonReport(results));
      writeFileSync(join(dir, 'b.json'), jsonReport(after));
      const worse = await capture(diffCommand, [join(dir, 'a.json'), join(dir, 'b.json')]);
      expect(worse.code).toBe(1);
      expect(worse.out).toContain('refuse mixtral original: 1 changed');
      writeFileSync(join(dir, 'd.json'), jsonReport([after[1]!, ...results.slice(0, 1), ...results.slice(2)]));
      const better = await capture(diffCommand, [join(dir, 'a.json'), join(dir, 'd.json')]);
      expect(better.out).toContain('1 changed status (0 worse, 1 better)');
      expect(better.code).toBe(0);
      await expect(capture(diffCommand, [join(dir, 'a.json')])).rejects.toThrow(/give at least 2 results files/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
