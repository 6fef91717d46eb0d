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
