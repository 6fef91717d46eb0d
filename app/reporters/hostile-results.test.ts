// Results files (`check --merge`) are untrusted input: typed errors for every shape, no
// crash. Each case here crashed or was accepted before: a wrong results file nested deep
// overflowed the stack in JSON.stringify (RangeError), a heat map that is not an array threw
// a TypeError, duplicate keys were resolved silently, invalid UTF-8 was replaced.
import { describe, expect, it } from 'vitest';
import { parseResults, ResultsFileError } from './json.js';
import { undeclaredGroups } from './declared.js';
import { groupBy } from './group.js';
import { diffResults } from './diff.js';
import { junitReport } from './junit.js';
import { htmlReport, MAX_REPORT_CELLS } from './html.js';
import type { CaseResult } from '../../harness/conformance/results.js';
import { DIAGNOSIS_KINDS } from '../../harness/compare/diagnose.js';
import { MAX_CASE_ID_LENGTH } from '../../harness/conformance/case-id.js';
import { MAX_KEY_LENGTH } from '../../harness/safetensors/json.js';

const record = (over: Record<string, unknown>) => JSON.stringify({ format: 'moe-conformance-results', version: 1, results: [{ id: 'moe:load:m=a', status: 'fail', durationMs: 1, replay: 'x', ...over }] });

describe('results files', () => {
  it.each([
    ['not a results file, nested 100,000 deep', `{"format": "x", "a": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`],
    ['a results file nested 100,000 deep', `{"format": "moe-conformance-results", "version": 1, "results": [], "a": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`],
    ['a heat map that is a number', record({ failure: { message: 'm', heatmap: 5 } })],
    ['a heat map row that is a string', record({ failure: { message: 'm', heatmap: ['abc'] } })],
    ['a failure message that is a number', record({ failure: { message: 5 } })],
    ['a failure that is an array', record({ failure: [] })],
    ['heat map axes of three', record({ failure: { message: 'm', heatmapAxes: ['a', 'b', 'c'] } })],
    ['a note that is an object', record({ note: {} })],
    ['a duplicate key', record({}).replace('"status":"fail"', '"status":"fail","status":"pass"')],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d])],
    // Fields every report reads: a number or an object where a string or a list belongs crashed them (TypeError).
    ['a diagnosis that is a number', record({ failure: { message: 'm', diagnosis: 5 } })],
    ['a diagnosis entry that is null', record({ failure: { message: 'm', diagnosis: [null] } })],
    ['a diagnosis kind that is a number', record({ failure: { message: 'm', diagnosis: [{ tensor: 't', kind: 5, detail: 'd' }] } })],
    ['a diagnosis detail that is an object', record({ failure: { message: 'm', diagnosis: [{ tensor: 't', kind: 'k', detail: {} }] } })],
    ['stderr that is a number', record({ stderr: 5 })],
    ['a failure rank that is a number', record({ failure: { message: 'm', rank: 5 } })],
    ['heat map rows that are a string', record({ failure: { message: 'm', heatmap: [[1]], heatmapRows: 'x' } })],
    // Kinds are counted by name in every summary (a Map of them): 3,000 distinct kinds of 16,400 characters (hashed by their length alone) took 15.8 s.
    ['a diagnosis kind of 16,384 characters', record({ failure: { message: 'm', diagnosis: [{ tensor: 't', kind: 'k'.repeat(16_384), detail: 'd' }] } })],
    ['a diagnosis kind that is no kind\'s name', record({ failure: { message: 'm', diagnosis: [{ tensor: 't', kind: 'Gate up swapped', detail: 'd' }] } })],
    ['4.5 MB of empty objects', `{"format": "moe-conformance-results", "version": 1, "results": [], "a": [${'{},'.repeat(1_500_000)}{}]}`],
  ] as const)('%s: ResultsFileError', (_name, text) => {
    expect(() => parseResults(text, 'r.json')).toThrow(ResultsFileError);
  });

  it('a file that is not JSON, or not a regular file, is named once', async () => {
    let message = '';
    try {
      parseResults('{"format": ', 'r.json');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^not JSON: .*\[file r\.json\]$/);
    expect(message.match(/\[file r\.json\]/g)).toHaveLength(1);
    const { readResults } = await import('./json.js');
    await expect(readResults('/dev/null/..')).rejects.toThrow(ResultsFileError);
    const dir = await readResults('/tmp').catch((e: Error) => e.message);
    expect(String(dir)).toMatch(/cannot read results.*directory/);
    expect(String(dir).match(/\[file \/tmp\]/g)).toHaveLength(1);
  });

  it('a record whose case ID is refused names the record, the file, and what was expected and found as fields', () => {
    const e = (() => {
      try {
        parseResults(record({ id: `moe:load:v=${'x'.repeat(MAX_CASE_ID_LENGTH)}` }), 'r.json');
      } catch (x) {
        return x as ResultsFileError;
      }
    })();
    expect(e).toBeInstanceOf(ResultsFileError);
    expect(e).toMatchObject({ file: 'r.json', expected: `<= ${MAX_CASE_ID_LENGTH} characters`, found: `${MAX_CASE_ID_LENGTH + 11} characters` });
    expect(e!.message).toBe(`record 0: case ID too long (expected <= ${MAX_CASE_ID_LENGTH} characters, found ${MAX_CASE_ID_LENGTH + 11} characters) [file r.json]`);
  });

  it('a record with every field reads back and is reported', () => {
    const failure = { message: 'm', tensor: 't', expected: 'e', found: 'f', rank: 'TP rank 0/1', layout: 'fused', defect: 'd', kept: '/k', heatmap: [[1]], heatmapAxes: ['a', 'b'], heatmapRows: [3], diagnosis: [{ tensor: 't', kind: 'gate-up-swapped', detail: 'x', map: [1, 0] }] };
    const rs = parseResults(record({ stderr: 'warning', failure }), 'r.json');
    expect(rs[0]!.failure).toEqual(failure);
    expect(junitReport(rs)).toContain('[gate-up-swapped] t: x');
  });

  it('a diagnosis kind this harness does not know reads back where it is shaped like one (a newer harness\'s), and every kind is so shaped', () => {
    const [r] = parseResults(record({ failure: { message: 'm', diagnosis: [{ tensor: 't', kind: 'a-kind-of-the-future', detail: 'd' }] } }), 'r.json');
    expect(r!.failure!.diagnosis![0]!.kind).toBe('a-kind-of-the-future');
    for (const kind of DIAGNOSIS_KINDS) expect(parseResults(record({ failure: { message: 'm', diagnosis: [{ tensor: 't', kind, detail: 'd' }] } }), 'r.json')).toHaveLength(1);
  });

  it('a valid record with a heat map of NaN and numbers reads back', () => {
    const [r] = parseResults(record({ failure: { message: 'm', heatmap: [[1, 'NaN'], [0.5, 'Infinity']], heatmapAxes: ['a', 'b'] } }), 'r.json');
    expect(r!.failure!.heatmap).toEqual([[1, NaN], [0.5, Infinity]]);
  });
});


/**
 * Array elements `f` reads through the array iterator (spread, for-of). Counted, not timed:
 * a report that copies a group on every append (`[...(map.get(k) ?? []), x]`) reads n²/2.
 * Replacing the iterator turns off V8's fast path for spreads in this test file only (its own process).
 */
function arrayReads(f: () => unknown): number {
  const proto = Array.prototype as unknown as { [Symbol.iterator]: () => Iterator<unknown> };
  const original = proto[Symbol.iterator];
  let reads = 0;
  proto[Symbol.iterator] = function (this: unknown[]) {
    const it = original.call(this);
    return { next: () => (reads++, it.next()), [Symbol.iterator]() { return this; } } as Iterator<unknown>;
  };
  try {
    f();
  } finally {
    proto[Symbol.iterator] = original;
  }
  return reads;
}

describe('reports of a results file grow linearly with it', () => {
  // Before: 20,000 results in one group took 9 s per report, 40,000 took 56 s.
  const n = 4000;
  const skipped: CaseResult[] = Array.from({ length: n }, (_, i) => ({ id: `moe:load:k=${i}`, status: 'skip', durationMs: 0, replay: '', note: 'not declared: model type x' }));
  const passed: CaseResult[] = skipped.map((r) => ({ ...r, status: 'pass' }));
  it.each([
    ['the undeclared skips by reason', () => undeclaredGroups(skipped)],
    ['the JUnit report (one suite)', () => junitReport(skipped)],
    ['the diff of two results files', () => diffResults(skipped, passed)],
  ] as const)('%s', (_name, report) => {
    // Linear: a few dozen reads per result (JUnit); copying groups: n²/2, 2,000 per result here.
    expect(arrayReads(report)).toBeLessThan(100 * n);
  });
});

describe('grouping by a long string', () => {
  /** The longest string `f` uses as a key of any Map (get, set, has). */
  function longestMapKey(f: () => unknown): number {
    const proto = Map.prototype as unknown as Record<'get' | 'set' | 'has', (this: Map<unknown, unknown>, k: unknown, v?: unknown) => unknown>;
    const original = { get: proto.get, set: proto.set, has: proto.has };
    let longest = 0;
    for (const m of ['get', 'set', 'has'] as const) {
      proto[m] = function (this: Map<unknown, unknown>, k: unknown, v?: unknown) {
        if (typeof k === 'string') longest = Math.max(longest, k.length);
        return original[m].call(this, k, v);
      };
    }
    try {
      f();
    } finally {
      Object.assign(proto, original);
    }
    return longest;
  }

  it(`groups undeclared skips by notes longer than ${MAX_KEY_LENGTH} characters without making them map keys (V8 hashes them by their length alone: 3,000 such notes took 13 s)`, () => {
    const note = (c: string) => `not declared: ${c.repeat(MAX_KEY_LENGTH + 1)}`;
    const rs: CaseResult[] = ['a', 'b', 'a'].map((c, i) => ({ id: `moe:load:k=${i}`, status: 'skip', durationMs: 0, replay: '', note: note(c) }));
    let groups: ReturnType<typeof undeclaredGroups> = [];
    expect(longestMapKey(() => (groups = undeclaredGroups(rs)))).toBeLessThanOrEqual(MAX_KEY_LENGTH);
    expect(groups.map((g) => [g.reason.length, g.ids])).toEqual([
      [MAX_KEY_LENGTH + 1, ['moe:load:k=0', 'moe:load:k=2']],
      [MAX_KEY_LENGTH + 1, ['moe:load:k=1']],
    ]);
    expect(groups.map((g) => g.reason[0])).toEqual(['a', 'b']);
  });
});

describe('groupBy', () => {
  it('keeps apart long keys that differ only in a lone surrogate (UTF-8 would encode both as U+FFFD before hashing)', () => {
    const long = 'k'.repeat(MAX_KEY_LENGTH + 1);
    const keys = [`${long}\ud800`, `${long}\ud801`, `${long}\ud800`];
    expect(groupBy(keys, (k) => k).map(([k, items]) => [k.at(-1), items.length])).toEqual([['\ud800', 2], ['\ud801', 1]]);
  });
});

describe('the HTML report of many heat maps', () => {
  it(`draws at most ${MAX_REPORT_CELLS} heat-map cells, then says a map is left out (2,000 failures with 64 × 64 maps overflowed the longest string: RangeError)`, () => {
    const heatmap = Array.from({ length: 64 }, () => Array.from({ length: 64 }, () => 1));
    const n = Math.ceil((MAX_REPORT_CELLS / 4096) * 1.2);
    const rs: CaseResult[] = Array.from({ length: n }, (_, i) => ({ id: `moe:load:k=${i}`, status: 'fail', durationMs: 0, replay: '', failure: { message: 'm', heatmap } }));
    const html = htmlReport(rs);
    const cells = html.match(/<rect [^>]*><title>/g)?.length ?? 0;
    expect(cells).toBeLessThanOrEqual(MAX_REPORT_CELLS);
    expect(cells).toBeGreaterThan(MAX_REPORT_CELLS - 4096);
    expect(html.match(/heat map left out/g)?.length).toBe(n - Math.floor(MAX_REPORT_CELLS / 4096));
  });
});
