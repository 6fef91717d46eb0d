// The strict parser against JSON.parse (an independent implementation) on valid JSON, and
// on what it must refuse where JSON.parse is lenient.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JsonDuplicateKey, JsonNumber, JsonSyntaxError, MAX_JSON_DEPTH, parseStrictJson, toPlain, type JsonValue } from './json.js';

const seed = Number(process.env.FC_SEED ?? 42);

describe('parseStrictJson', () => {
  it('agrees with JSON.parse on valid JSON (full Unicode, no lone surrogates)', () => {
    fc.assert(
      fc.property(fc.json({ stringUnit: 'grapheme' }), fc.constantFrom('', ' ', '\n\t\r '), (text, ws) => {
        expect(toPlain(parseStrictJson(ws + text + ws))).toEqual(JSON.parse(text));
      }),
      { seed, numRuns: 500 },
    );
  });

  it('keeps numbers as text: exact u64 values, nothing else', () => {
    const n = (t: string) => (parseStrictJson(t) as JsonNumber).u64;
    expect(n('18446744073709551615')).toBe(18446744073709551615n);
    expect(n('18446744073709551616')).toBeUndefined();
    expect(n('0')).toBe(0n);
    for (const t of ['-0', '-1', '1.0', '1e2', '100000000000000000000000']) expect(n(t), t).toBeUndefined();
    expect((parseStrictJson('1e-6') as JsonNumber).value).toBe(1e-6);
  });

  it('refuses what JSON.parse would hide or accept loosely', () => {
    expect(() => parseStrictJson('{"a":1,"a":2}')).toThrow(JsonDuplicateKey);
    expect(() => parseStrictJson('[{"x":{"b":1,"b":1}}]')).toThrow(JsonDuplicateKey);
    for (const bad of ['"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"\\ud800x"', '"a\u0001"', '01', '-', '1.', '.5', '+1', '[1,]', '{"a":1,}', '\ufeff{}', '{} {}', 'nul', "'a'", '"\\x"', '"\\u12"', '[', '{"a"}', '{"a":}', '{1:2}', '']) {
      expect(() => parseStrictJson(bad), JSON.stringify(bad)).toThrow(JsonSyntaxError);
    }
    expect(toPlain(parseStrictJson('"\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\"'))).toBe('\u{1F600}/\b\f\n\r\t"\\');
  });

  it(`nests up to ${MAX_JSON_DEPTH} levels, refuses one more, and survives a million`, () => {
    const deep = (d: number) => '['.repeat(d) + ']'.repeat(d);
    expect(() => parseStrictJson(deep(MAX_JSON_DEPTH))).not.toThrow();
    expect(() => parseStrictJson(deep(MAX_JSON_DEPTH + 1))).toThrow(JsonSyntaxError);
    expect(() => parseStrictJson('{"a":'.repeat(1_000_000))).toThrow(JsonSyntaxError);
  });

  it('objects are Maps in key order, so __proto__ is a plain key', () => {
    const v = parseStrictJson('{"b":1,"__proto__":{"x":true},"a":null}') as Map<string, JsonValue>;
    expect([...v.keys()]).toEqual(['b', '__proto__', 'a']);
    const plain = toPlain(v) as Record<string, unknown>;
    expect(Object.getPrototypeOf(plain)).toBe(Object.prototype);
    expect(Object.hasOwn(plain, '__proto__')).toBe(true);
  });
});
