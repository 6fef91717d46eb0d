import { describe, expect, it } from 'vitest';
import { plural } from './errors.js';

describe('plural', () => {
  it('says 1 rank and 2 ranks, not 1 ranks', () => {
    expect(plural(1, 'rank')).toBe('1 rank');
    expect(plural(0, 'rank')).toBe('0 ranks');
    expect(plural(2, 'case')).toBe('2 cases');
    expect(plural(1, 'matrix', 'matrices')).toBe('1 matrix');
    expect(plural(3, 'matrix', 'matrices')).toBe('3 matrices');
  });
});

describe('MoeConformanceError', () => {
  it('shows only the sides it knows, never "undefined"', async () => {
    const { MoeConformanceError } = await import('./errors.js');
    expect(new MoeConformanceError('bad path', { file: 'f', found: '../x' }).message).toBe('bad path (found ../x) [file f]');
    expect(new MoeConformanceError('too big', { expected: '<= 8' }).message).toBe('too big (expected <= 8)');
    expect(new MoeConformanceError('plain', { file: 'f' }).reason).toBe('plain');
    // JSON would print Infinity and NaN as null.
    expect(new MoeConformanceError('huge', { found: Infinity }).message).toBe('huge (found Infinity)');
    expect(new MoeConformanceError('odd', { found: [1, NaN, -Infinity] }).message).toBe('odd (found [1,"NaN","-Infinity"])');
  });
});

describe('showValue', () => {
  it('clips a long value and names its length; the message stays short whatever the input', async () => {
    const { MoeConformanceError, MAX_SHOWN_CHARS, showValue } = await import('./errors.js');
    const long = 'x'.repeat(1_000_000);
    expect(showValue(long)).toBe(`${'x'.repeat(MAX_SHOWN_CHARS)}… (1000000 characters)`);
    expect(showValue(Array.from({ length: 100_000 }, (_, i) => i))).toMatch(/^\[0,1,2,.*… \(\d+ characters\)$/);
    const e = new MoeConformanceError('bad name', { tensor: long, file: long, expected: long, found: long });
    expect(e.message.length).toBeLessThan(5 * MAX_SHOWN_CHARS);
    expect(showValue('w'.repeat(MAX_SHOWN_CHARS))).toBe('w'.repeat(MAX_SHOWN_CHARS));
  });

  it('escapes control characters (a newline, a terminal escape) so that a value stays on one line and cannot drive the terminal', async () => {
    const { MoeConformanceError, showValue } = await import('./errors.js');
    expect(showValue('a\nb')).toBe('"a\\nb"');
    expect(showValue('\u001b[2Jgone')).toBe('"\\u001b[2Jgone"');
    expect(showValue('plain name')).toBe('plain name');
    const e = new MoeConformanceError('bad', { file: 'dir/\u001b]0;title\u0007x', tensor: 'w\r\n', found: 'line1\nline2' });
    expect(e.message).not.toMatch(/[\u0000-\u001f]/);
    expect(e.message).toBe('bad (found "line1\\nline2") [file "dir/\\u001b]0;title\\u0007x", tensor "w\\r\\n"]');
  });

  it('escapes the C1 controls, DEL and U+2028/2029 too, which JSON.stringify leaves as they are (U+009B is a terminal\'s CSI)', async () => {
    const { MoeConformanceError, showValue } = await import('./errors.js');
    expect(showValue('a\u009b2Jb')).toBe('"a\\u009b2Jb"');
    expect(showValue('x\u2028y\u2029\u007f')).toBe('"x\\u2028y\\u2029\\u007f"');
    expect(showValue(['a\u0085', 'b\n'])).toBe('["a\\u0085","b\\n"]');
    const e = new MoeConformanceError('bad', { tensor: 'w\u009b31m', file: 'f\u2028', found: { k: '\u009c' } });
    expect(e.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(e.message).toBe('bad (found {"k":"\\u009c"}) [file "f\\u2028", tensor "w\\u009b31m"]');
  });

  it('never cuts a surrogate pair in two where it clips', async () => {
    const { MAX_SHOWN_CHARS, showValue } = await import('./errors.js');
    const shown = showValue(`x${'\u{1F600}'.repeat(MAX_SHOWN_CHARS)}`);
    expect(shown).toBe(`x${'\u{1F600}'.repeat((MAX_SHOWN_CHARS - 2) / 2)}… (${2 * MAX_SHOWN_CHARS + 1} characters)`);
    // No lone surrogate: a high one not followed by a low one, or a low one not after a high one.
    expect(shown).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });
});
