import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CaseResult } from '../../harness/conformance/results.js';
import type { RunInfo } from '../../harness/conformance/run-info.js';
import { heatmapSvg, htmlReport } from './html.js';
import { jsonReport, mergeResults, parseResults, readRunInfo, ResultsFileError } from './json.js';
import { escapeXml, junitReport } from './junit.js';
import { terminalReport } from './terminal.js';

const results: CaseResult[] = [
  { id: 'moe:load:model=mixtral;layout=fused;dtype=bf16;tp=2;ep=1;placement=linear', status: 'pass', durationMs: 12, seed: 1, replay: 'r1' },
  { id: 'moe:load:model=mixtral;layout=fused;dtype=bf16;tp=2;ep=1;placement=linear;case=2', status: 'warn', durationMs: 3, replay: 'r2', note: 'loose' },
  {
    id: 'moe:load:model=dbrx;layout=original;dtype=f32;tp=1;ep=3;placement=round_robin',
    status: 'fail',
    durationMs: 40,
    seed: 7,
    replay: 'moe-conformance check --case X --seed 7',
    failure: {
      message: 'BitMismatch: bytes differ <&>\u0001', tensor: 'layers.0.experts.w13', expected: '0x3f80', found: '0x0000', heatmap: [[0, 1], [0.5, NaN]],
      diagnosis: [{ tensor: 'layers.0.experts.w13', kind: 'gate-up-swapped', detail: 'experts 0–7: gate and up halves swapped (up rows first)' }],
    },
  },
  { id: 'moe:refuse:model=dbrx;broken=missing-expert', status: 'xfail', durationMs: 1, replay: 'r4', note: 'known', failure: { message: 'accepted' } },
  { id: 'moe:refuse:model=dbrx;broken=truncated', status: 'skip', durationMs: 0, replay: 'r5', note: 'slow "runner"' },
  { id: 'moe:refuse:model=olmoe;broken=truncated', status: 'unexpected-pass', durationMs: 2, replay: 'r6', failure: { message: 'expected to fail but passed' } },
];

const run: RunInfo = { loader: 'python my_loader.py', loaderName: 'my-engine', loaderVersion: '1.2.3', seed: 42, harnessVersion: '0.1.0', date: '2026-12-07T12:00:00.000Z', machine: 'box: Xeon × 2' };

describe('terminal report', () => {
  it('names what ran, counts the failures by diagnosis, and leads each failure with its diagnosis', () => {
    const text = terminalReport(results, run);
    const lines = text.split('\n');
    expect(lines.slice(0, 8)).toEqual([
      'loader:   python my_loader.py',
      'declared: my-engine 1.2.3',
      'seed:     42',
      'harness:  moe-conformance 0.1.0',
      'date:     2026-12-07T12:00:00.000Z',
      'machine:  box: Xeon × 2',
      '',
      '1 failed: 1 gate-up-swapped',
    ]);
    // The failure's first line under its ID is what the loader did wrong.
    const at = lines.indexOf('FAIL moe:load:model=dbrx;layout=original;dtype=f32;tp=1;ep=3;placement=round_robin');
    expect(lines[at + 1]).toBe('  [gate-up-swapped] layers.0.experts.w13: experts 0–7: gate and up halves swapped (up rows first)');
    expect(lines[at + 2]).toBe('  BitMismatch: bytes differ <&>\u0001');
  });
  it('shows the table, each failure with tensor, expected/found and replay, and the verdict', () => {
    const text = terminalReport(results);
    const lines = text.split('\n');
    expect(lines[0]).toBe('1 failed: 1 gate-up-swapped');
    expect(lines[2]).toMatch(/^check\s+model\s+layout\s+dtype\s+parallel\s+pass\s+warn\s+fail\s+skip\s+xfail\s+unexpected-pass$/);
    expect(text).toMatch(/load\s+mixtral\s+fused\s+bf16\s+tp=2 ep=1\s+1\s+1\s+\.\s+\./);
    expect(text).toMatch(/dbrx\s+original\s+f32\s+tp=1 ep=3 round_robin\s+\.\s+\.\s+1/);
    expect(text).toContain('FAIL moe:load:model=dbrx;layout=original;dtype=f32;tp=1;ep=3;placement=round_robin');
    expect(text).toContain('  tensor:   layers.0.experts.w13\n  expected: 0x3f80\n  found:    0x0000\n  replay:   moe-conformance check --case X --seed 7');
    expect(text).toContain('UNEXPECTED PASS moe:refuse:model=olmoe;broken=truncated');
    expect(text.trimEnd().split('\n').at(-1)).toBe('6 cases: 1 passed, 1 warned, 1 failed, 1 skipped, 1 expected failures, 1 unexpected passes — FAILED');
    expect(terminalReport(results.slice(0, 2))).toMatch(/— OK\n$/);
    const golden: CaseResult = { id: 'moe:golden:fixture=qwen3_moe-bf16;layout=fused;tp=2;ep=3;placement=round_robin', status: 'pass', durationMs: 1, replay: '' };
    const many: CaseResult[] = Array.from({ length: 70 }, (_, i) => ({ id: `moe:load:model=m${i % 2};layout=fused;dtype=f32;tp=${i};ep=1;placement=linear`, status: 'pass', durationMs: 1, replay: '' }));
    const folded = terminalReport(many);
    expect(folded).toMatch(/load\s+m0\s+fused\s+f32\s+35 settings\s+35/);
    expect(folded.split('\n').filter((l) => l.startsWith('load'))).toHaveLength(2);
    // Still too many rows: layouts and dtypes fold too.
    const wide: CaseResult[] = Array.from({ length: 140 }, (_, i) => ({ id: `moe:load:model=m${i % 2};layout=${i % 4 < 2 ? 'fused' : 'original'};dtype=d${i % 35};tp=1;ep=1;placement=linear`, status: 'pass', durationMs: 1, replay: '' }));
    expect(terminalReport(wide)).toMatch(/load\s+m0\s+2 layouts\s+35 dtypes\s+tp=1 ep=1\s+70/);
    expect(terminalReport([golden])).toMatch(/golden\s+qwen3_moe\s+fused\s+bf16\s+tp=2 ep=3 round_robin\s+1/);
  });
});

describe('JUnit report', () => {
  it('is well-formed, escaped and counts right', () => {
    const xml = junitReport(results);
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="moe-conformance" tests="6" failures="2" skipped="2" time="0.058">/);
    expect(xml).toContain('<testsuite name="moe.load" tests="3" failures="1" skipped="0"');
    expect(xml).toContain('message="[gate-up-swapped] layers.0.experts.w13: experts 0–7: gate and up halves swapped (up rows first) — BitMismatch: bytes differ &lt;&amp;&gt;\uFFFD" type="fail"');
    expect(junitReport(results, 'moe-conformance', run)).toContain('<property name="loader" value="python my_loader.py"/>');
    expect(xml).toContain('<skipped message="slow &quot;runner&quot;"/>');
    expect(xml).not.toMatch(/[\u0000-\u0008]/);
    // Balanced tags: every open element closes.
    const tags = [...xml.matchAll(/<(\/?)([a-z-]+)[^>]*?(\/?)>/g)];
    const stack: string[] = [];
    for (const [, close, name, self] of tags) {
      if (self) continue;
      if (close) expect(stack.pop()).toBe(name);
      else stack.push(name!);
    }
    expect(stack).toEqual([]);
  });
  it('escapes every markup character and XML-forbidden code point', () => {
    expect(escapeXml(`a<b>&"'\u0000\uD800x\uD83D\uDE00`)).toBe('a&lt;b&gt;&amp;&quot;&apos;\uFFFD\uFFFDx\uD83D\uDE00');
  });
});

describe('JSON results', () => {
  it('round-trips and merges disjoint shards in ID order', async () => {
    const a = parseResults(jsonReport(results.slice(0, 3), run));
    // failure.diagnosis is a list of {tensor, kind, detail}; the run's facts sit beside the results.
    expect(JSON.parse(jsonReport(results.slice(0, 3), run)).results[2].failure.diagnosis).toEqual([{ tensor: 'layers.0.experts.w13', kind: 'gate-up-swapped', detail: 'experts 0–7: gate and up halves swapped (up rows first)' }]);
    const dir = await mkdtemp(join(tmpdir(), 'moe-runinfo-'));
    try {
      await writeFile(join(dir, 'with.json'), jsonReport(results, run));
      await writeFile(join(dir, 'without.json'), jsonReport(results));
      expect(await readRunInfo(join(dir, 'with.json'))).toEqual(run);
      expect(await readRunInfo(join(dir, 'without.json'))).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const b = parseResults(jsonReport(results.slice(3)));
    expect(a).toEqual(results.slice(0, 3));
    const merged = mergeResults([{ file: 'b.json', results: b }, { file: 'a.json', results: a }]);
    expect(merged.map((r) => r.id)).toEqual(results.map((r) => r.id).sort());
  });
  it('refuses overlapping shards and files that are not results', () => {
    expect(() => mergeResults([{ file: 'a.json', results }, { file: 'b.json', results: results.slice(2, 3) }])).toThrow(/appears in two result files.*also in a\.json/);
    expect(() => parseResults('{')).toThrow(ResultsFileError);
    expect(() => parseResults('{"format":"other","version":1,"results":[]}')).toThrow(/not a results file/);
    expect(() => parseResults(JSON.stringify({ format: 'moe-conformance-results', version: 1, results: [{ id: 'x', status: 'pass', durationMs: 1, replay: '' }] }))).toThrow(/record 0/);
    expect(() => parseResults(JSON.stringify({ format: 'moe-conformance-results', version: 1, results: [{ id: 'a:b:', status: 'great', durationMs: 1, replay: '' }] }))).toThrow(/record 0 is not a case result/);
  });
});

describe('HTML report', () => {
  it('holds the table, the failures and escaped text, with no external resources', () => {
    const html = htmlReport(results);
    expect(html.match(/<tr class="(ok|bad)">/g)).toHaveLength(4);
    expect(html).toContain('<td>refuse</td><td>dbrx</td><td>-</td><td>-</td><td>-</td>');
    expect(html).toContain('bytes differ &lt;&amp;&gt;');
    expect(html).not.toMatch(/<script|src=|href=/);
    expect(html.match(/<svg class="heatmap"/g)).toHaveLength(1);
    // The diagnosis comes above the evidence, and the run's facts and the count by kind at the top.
    expect(html.indexOf('<ul class="diagnosis"><li><b>gate-up-swapped</b> <code>layers.0.experts.w13</code>: experts 0–7: gate and up halves swapped')).toBeGreaterThan(0);
    expect(html.indexOf('<ul class="diagnosis">')).toBeLessThan(html.indexOf('<pre>BitMismatch'));
    expect(html).toContain('<p id="kinds">1 failed: 1 gate-up-swapped</p>');
    expect(htmlReport(results, 'r', run)).toContain('<tr><th>declared</th><td>my-engine 1.2.3</td></tr>');
  });
  it('draws one cell per value, NaN in black, and max-pools large maps', () => {
    const svg = heatmapSvg([[0, 2], [1, NaN]]);
    const cells = (text: string) => /<g class="cells">(.*?)<\/g>/.exec(text)![1]!;
    expect(cells(svg).match(/<rect /g)).toHaveLength(4);
    // Axes titled and ticked, and a legend from 0 to the largest error.
    expect(svg).toContain('>expert</text>');
    expect(svg).toContain('>row</text>');
    expect(svg).toMatch(/<g class="legend">.*>0\.00<\/text>.*>1\.00<\/text>.*>2\.00<\/text>.*NaN\/Inf/);
    expect(svg).toContain('fill="rgb(255,255,255)"');
    expect(svg).toContain('fill="rgb(255,0,0)"');
    expect(svg).toContain('fill="rgb(255,128,128)"');
    expect(svg).toContain('fill="#000000"');
    const big = Array.from({ length: 8 }, (_, e) => Array.from({ length: 1000 }, (_, i) => (e === 3 && i === 999 ? 5 : 0)));
    const pooled = heatmapSvg(big);
    expect(cells(pooled).match(/<rect /g)).toHaveLength(8 * 63);
    expect(pooled).toContain('max-pooled');
    expect(cells(pooled).match(/fill="rgb\(255,0,0\)"/g)).toHaveLength(1);
    // A results file's heat map of 200,000 rows (merged from anyone's JSON) is pooled, not spread onto the stack.
    const tall = Array.from({ length: 200_000 }, (_, i) => [i === 7 ? 3 : 0, 0]);
    expect(cells(heatmapSvg(tall)).match(/fill="rgb\(255,0,0\)"/g)).toHaveLength(1);
    // Rows can be labelled with the experts the slots hold (an EP rank's slots 0, 1 hold experts 5, 7).
    expect(heatmapSvg([[0, 1], [1, 0]], ['expert', 'row'], [5, 7])).toMatch(/text-anchor="end">5<\/text>.*text-anchor="end">7<\/text>/);
    // Column ticks name the map's own indices, not the pooled ones.
    expect(pooled).toMatch(/>896<\/text>/);
    expect(heatmapSvg([])).toBe('');
  });
});
