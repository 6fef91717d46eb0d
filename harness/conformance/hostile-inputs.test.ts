// Results files (`check --merge`) and expectations files are untrusted input: typed errors
// for every shape, no crash, no exponential time. Each case here crashed or hung before:
// a wrong results file nested deep overflowed the stack in JSON.stringify (RangeError), a
// heat map that is not an array threw a TypeError, and an expectations pattern of many
// stars backtracked exponentially in the regular expression it became.
import { describe, expect, it } from 'vitest';
import { matchesPattern, parseCaseId, parseCasePattern } from './case-id.js';
import { Expectations } from './expectations.js';
import { parseResults, ResultsFileError } from './reporters/json.js';

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
    ['4.5 MB of empty objects', `{"format": "moe-conformance-results", "version": 1, "results": [], "a": [${'{},'.repeat(1_500_000)}{}]}`],
  ] as const)('%s: ResultsFileError', (_name, text) => {
    expect(() => parseResults(text, 'r.json')).toThrow(ResultsFileError);
  });

  it('a valid record with a heat map of NaN and numbers reads back', () => {
    const [r] = parseResults(record({ failure: { message: 'm', heatmap: [[1, 'NaN'], [0.5, 'Infinity']], heatmapAxes: ['a', 'b'] } }), 'r.json');
    expect(r!.failure!.heatmap).toEqual([[1, NaN], [0.5, Infinity]]);
  });
});

describe('expectations patterns', () => {
  it('many stars against a long value that does not match: linear, not exponential, time', { timeout: 20_000 }, () => {
    const id = parseCaseId(`moe:load:model=${'a'.repeat(2000)}`);
    const pattern = parseCasePattern(`moe:load:model=${'*a'.repeat(40)}*b`);
    expect(matchesPattern(pattern, id)).toBe(false);
    expect(Expectations.parse(`moe:load:model=${'*a'.repeat(40)}*b fail # never`).lookup(id)).toBeUndefined();
  });

  it('stars match any run, empty included', () => {
    const id = parseCaseId('moe:load:model=qwen3_moe;tp=4');
    for (const [p, ok] of [
      ['moe:load:model=qwen*;tp=4', true],
      ['moe:load:model=*moe;tp=*', true],
      ['moe:load:model=q*w*e*n*3*_*m*o*e*;tp=4', true],
      ['moe:load:model=**;tp=4*', true],
      ['moe:load:model=*x*;tp=4', false],
      ['moe:load:model=qwen3_moe*a;tp=4', false],
      ['moe:load:model=wen3_moe;tp=4', false],
    ] as const) {
      expect(matchesPattern(parseCasePattern(p), id), p).toBe(ok);
    }
  });
});
