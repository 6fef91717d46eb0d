// Expectations files are untrusted input: a pattern of many stars backtracked
// exponentially in the regular expression it became (a hang); it is now matched in linear
// time. (Results files: app/reporters/hostile-results.test.ts.)
import { describe, expect, it } from 'vitest';
import { matchesPattern, parseCaseId, parseCasePattern } from './case-id.js';
import { Expectations } from './expectations.js';

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
