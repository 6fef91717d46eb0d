// The strict parser against JSON.parse (an independent implementation) on valid JSON, and
// on what it must refuse where JSON.parse is lenient.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JsonCursor, JsonDuplicateKey, JsonKeyTooLong, JsonNumber, JsonSyntaxError, JsonTooLarge, MAX_JSON_DEPTH, MAX_KEY_LENGTH, MAX_TREE_FACTOR, parseStrictJson, toPlain, TREE_SLACK_BYTES, type JsonValue } from './json.js';

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

  it('integers of up to 15 digits are numbers; other numbers keep their text: exact u64 values, nothing else', () => {
    const n = (t: string) => (parseStrictJson(t) as JsonNumber).u64;
    expect(n('18446744073709551615')).toBe(18446744073709551615n);
    expect(n('18446744073709551616')).toBeUndefined();
    expect(n('1000000000000000')).toBe(1000000000000000n);
    for (const t of ['-1.0', '1.0', '1e2', '100000000000000000000000', '-1000000000000000']) expect(n(t), t).toBeUndefined();
    expect((parseStrictJson('1e-6') as JsonNumber).value).toBe(1e-6);
    expect(parseStrictJson('[0, -0, 7, -42, 999999999999999]')).toEqual([0, -0, 7, -42, 999999999999999]);
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

  it(`keys are at most ${MAX_KEY_LENGTH} characters after unescaping (longer ones all hash alike in V8), refused with JsonKeyTooLong`, () => {
    const doc = (key: string) => `{"a":1,"${key}":[{"${key}":2}]}`;
    expect(parseStrictJson(doc('k'.repeat(MAX_KEY_LENGTH)))).toBeInstanceOf(Map);
    expect(() => parseStrictJson(doc('k'.repeat(MAX_KEY_LENGTH + 1)))).toThrow(JsonKeyTooLong);
    expect(() => parseStrictJson(doc('\\n'.repeat(MAX_KEY_LENGTH + 1)))).toThrow(JsonKeyTooLong);
    expect(() => parseStrictJson(doc('k'.repeat(MAX_KEY_LENGTH + 1)))).toThrow(/at byte 7: key of 16384 characters/);
    // A string value, and a key inside a skipped value, may be longer: neither is hashed.
    expect(parseStrictJson(`["${'v'.repeat(MAX_KEY_LENGTH + 1)}"]`)).toHaveLength(1);
    expect(() => skipWhole(doc('k'.repeat(MAX_KEY_LENGTH + 1)))).not.toThrow();
  });

  it('objects are Maps in key order, so __proto__ is a plain key', () => {
    const v = parseStrictJson('{"b":1,"__proto__":{"x":true},"a":null}') as Map<string, JsonValue>;
    expect([...v.keys()]).toEqual(['b', '__proto__', 'a']);
    const plain = toPlain(v) as Record<string, unknown>;
    expect(Object.getPrototypeOf(plain)).toBe(Object.prototype);
    expect(Object.hasOwn(plain, '__proto__')).toBe(true);
  });
});

/** Validate a whole document with JsonCursor.skipValue (what schema-directed parsers do with ignored fields). */
function skipWhole(text: string): void {
  const c = new JsonCursor(new TextEncoder().encode(text));
  c.ws();
  c.skipValue(0);
  c.finish();
}

/** Whether a number in the text is infinite as a double. */
const infinite = (text: string) => (text.match(/-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/g) ?? []).some((m) => !Number.isFinite(Number(m)));

const outcome = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    return e.constructor.name;
  }
};

describe('JsonCursor.skipValue', () => {
  it('accepts exactly what the tree parser accepts, but for duplicate keys (not looked for) and infinite numbers (refused, as serde_json does)', () => {
    const jsonish = fc.string({ unit: fc.constantFrom(...'{}[]":,0123-.eE+\\u ntrfalsd8\u00e9'.split('')), maxLength: 40 });
    fc.assert(
      fc.property(fc.oneof(fc.json(), jsonish, fc.json().map((j) => j.replace(/[0-9]+/, '1e400'))), (text) => {
        const tree = outcome(() => parseStrictJson(text));
        const skip = outcome(() => skipWhole(text));
        if (tree === 'JsonDuplicateKey') expect(['ok', 'JsonSyntaxError']).toContain(skip);
        else if (skip === 'JsonSyntaxError' && tree === 'ok') expect(infinite(text), text).toBe(true);
        else expect(skip, text).toBe(tree);
      }),
      { seed, numRuns: 3000 },
    );
  });

  it('refuses 1e400 and a 400-digit integer, accepts 1e-400 and the largest double', () => {
    for (const bad of ['1e400', '-1e400', '1' + '0'.repeat(400), '[1e309]', '{"a":[0.5e999]}']) expect(() => skipWhole(bad), bad).toThrow(JsonSyntaxError);
    for (const ok of ['1e-400', '1.7976931348623157e308', '-0', '1' + '0'.repeat(300), '"\\ud83d\\ude00"']) expect(() => skipWhole(ok), ok).not.toThrow();
    for (const bad of ['"\\ud800"', '"a', '"\\q"', '[1,]', '{"a" 1}', '{"a":1 "b":2}', 'tru', '-', '1.', '1e', '01']) expect(() => skipWhole(bad), bad).toThrow(JsonSyntaxError);
  });
});

describe('strings', () => {
  it('escapes of 1 to 4 UTF-8 bytes, mixed with raw multi-byte text, decode like JSON.parse', () => {
    for (const s of ['"\\u0041\\u00e9\\u20ac\\ud83d\\ude00"', '"é€😀\\n"', '"' + '\\n'.repeat(100) + 'é' + '"', '"a\\"b\\\\c\\/d"']) {
      expect(parseStrictJson(s), s).toBe(JSON.parse(s));
    }
  });
});

describe('the tree budget', () => {
  it(`refuses a document that would take more than ${MAX_TREE_FACTOR}x its size (+ ${TREE_SLACK_BYTES} bytes) as a tree`, () => {
    const objects = `[${'{},'.repeat(400_000)}{}]`;
    expect(() => parseStrictJson(objects)).toThrow(JsonTooLarge);
    expect(() => parseStrictJson(`[${'[],'.repeat(400_000)}[]]`)).toThrow(JsonTooLarge);
    // Small integers are plain numbers and short other numbers share one JsonNumber: a slot each.
    expect((parseStrictJson(`[${'1,'.repeat(1_000_000)}1]`) as JsonValue[]).length).toBe(1_000_001);
    expect((parseStrictJson(`[${'0.5,'.repeat(1_000_000)}1]`) as JsonValue[]).length).toBe(1_000_001);
    expect((parseStrictJson(`[${Array.from({ length: 500_000 }, (_, i) => i).join(',')}]`) as JsonValue[]).length).toBe(500_000);
    // Under the slack, any shape passes.
    expect(() => parseStrictJson(`[${'{},'.repeat(1000)}{}]`)).not.toThrow();
  });
});
