import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CaseIdError,
  caseHash,
  caseId,
  formatCaseId,
  formatCasePattern,
  matchesPattern,
  MAX_CASE_ID_LENGTH,
  param,
  parseCaseId,
  parseCasePattern,
} from './case-id.js';

const seed = Number(process.env.FC_SEED ?? 42);
const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/);
const value = fc.stringMatching(/^[A-Za-z0-9_.+\-/]{1,10}$/);

describe('case IDs', () => {
  it('prints parameters in the order given', () => {
    const id = caseId('moe', 'load', { model: 'mixtral', layout: 'fused', dtype: 'bf16', tp: 2, ep: 3, placement: 'round_robin', variant: 'edge-H2I' });
    expect(formatCaseId(id)).toBe('moe:load:model=mixtral;layout=fused;dtype=bf16;tp=2;ep=3;placement=round_robin;variant=edge-H2I');
    expect(param(id, 'tp')).toBe('2');
    expect(param(id, 'nope')).toBeUndefined();
  });

  it('parse and print round-trip', () => {
    fc.assert(
      fc.property(name, name, fc.uniqueArray(fc.tuple(name, value), { selector: ([k]) => k, maxLength: 6 }), (suite, test, params) => {
        const text = `${suite}:${test}:${params.map(([k, v]) => `${k}=${v}`).join(';')}`;
        const id = parseCaseId(text);
        expect(formatCaseId(id)).toBe(text);
        expect(id.params).toEqual(params);
      }),
      { seed },
    );
  });

  it('refuses malformed IDs with a typed error', () => {
    for (const bad of ['moe', 'moe:load', 'Moe:load:', 'moe:load:tp', 'moe:load:tp=', 'moe:load:tp=1;tp=2', 'moe:load:a=b c', 'moe:load:a=b;*', 'moe:load:a=x:y', 'moe:load:=1']) {
      expect(() => parseCaseId(bad), bad).toThrow(CaseIdError);
    }
    expect(() => caseId('moe', 'load', { model: 'a;b' })).toThrow(CaseIdError);
  });

  it(`refuses an ID longer than ${MAX_CASE_ID_LENGTH} characters (results files' IDs are map keys; V8 hashes very long strings by their length alone)`, () => {
    const of = (n: number) => `moe:load:v=${'x'.repeat(n - 'moe:load:v='.length)}`;
    expect(formatCaseId(parseCaseId(of(MAX_CASE_ID_LENGTH)))).toHaveLength(MAX_CASE_ID_LENGTH);
    expect(() => parseCaseId(of(MAX_CASE_ID_LENGTH + 1))).toThrow(CaseIdError);
    expect(() => parseCaseId(of(MAX_CASE_ID_LENGTH + 1))).toThrow(/too long.*4097 characters/);
    expect(() => caseId('moe', 'load', { v: 'x'.repeat(MAX_CASE_ID_LENGTH) })).toThrow(CaseIdError);
  });

  it('hashes stably (FNV-1a) for sharding', () => {
    expect(caseHash('')).toBe(0x811c9dc5);
    expect(caseHash('a')).toBe(0xe40c292c); // published FNV-1a test vector
    expect(caseHash(parseCaseId('moe:load:a=1'))).toBe(caseHash('moe:load:a=1'));
  });
});

describe('case patterns', () => {
  const id = parseCaseId('moe:load:model=mixtral;layout=fused;dtype=bf16;tp=2');
  const yes = ['moe:load:model=mixtral;*', 'moe:*:*', '*:*:*', 'moe:load:tp=2;model=mixtral;layout=fused;dtype=bf16', 'moe:load:model=mix*;dtype=*16;*', 'moe:load:model=mixtral;layout=fused;dtype=bf16;tp=2'];
  const no = ['moe:load:model=mixtral', 'moe:load:model=qwen3_moe;*', 'moe:forward:*', 'moe:load:model=mixtral;seed=1;*', 'moe:load:model=mix;*', 'x:load:*'];
  it.each(yes)('%s matches', (p) => expect(matchesPattern(parseCasePattern(p), id)).toBe(true));
  it.each(no)('%s does not match', (p) => expect(matchesPattern(parseCasePattern(p), id)).toBe(false));
  it('prints patterns back', () => {
    for (const p of yes) expect(formatCasePattern(parseCasePattern(p))).toBe(p);
  });
  it('treats regex characters in values literally', () => {
    expect(matchesPattern(parseCasePattern('moe:t:v=a.b;*'), parseCaseId('moe:t:v=a.b'))).toBe(true);
    expect(matchesPattern(parseCasePattern('moe:t:v=a.b;*'), parseCaseId('moe:t:v=axb'))).toBe(false);
  });
  it('matching allocates no map per pattern: every line of an expectations file meets every case (a Map per call made a million-line file cost 161 ms per case)', () => {
    const patterns = [...yes, ...no].map(parseCasePattern);
    const RealMap = globalThis.Map;
    let made = 0;
    globalThis.Map = class<K, V> extends RealMap<K, V> {
      constructor(entries?: Iterable<readonly [K, V]> | null) {
        super(entries);
        made++;
      }
    } as MapConstructor;
    try {
      for (const p of patterns) matchesPattern(p, id);
    } finally {
      globalThis.Map = RealMap;
    }
    expect(made).toBe(0);
  });
  it('refuses malformed patterns', () => {
    for (const bad of ['moe:load', 'moe:lo ad:*', 'moe:load:a=b c;*', 'moe:load:a']) expect(() => parseCasePattern(bad), bad).toThrow(CaseIdError);
  });
});
