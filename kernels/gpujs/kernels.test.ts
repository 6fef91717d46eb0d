// The fallback guard: gpu.js degrades some kernels to its cpu backend with only a console
// warning. assertRanOn must turn that into a typed error, and stay quiet when the mode ran.
import { GPU, type IKernelRunShortcut } from 'gpu.js';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendFallbackError } from './errors.js';
import { assertRanOn, ranOn } from './kernels.js';

describe('assertRanOn', () => {
  const gpu = new GPU({ mode: 'webasm' });
  afterAll(async () => {
    await gpu.destroy();
  });

  it('accepts a kernel that ran on the mode asked for', () => {
    const kernel = gpu.createKernel(function (this: { thread: { x: number } }, a: number[]) {
      return 2 * a[this.thread.x]!;
    }, { output: [3], precision: 'single' });
    expect(Array.from(kernel(new Float32Array([1, 2, 3])) as Float32Array)).toEqual([2, 4, 6]);
    expect(ranOn(kernel)).toBe('webasm');
    expect(() => assertRanOn(kernel, 'webasm', 'double')).not.toThrow();
  });

  it('throws BackendFallbackError when gpu.js silently fell back to cpu', () => {
    // webasm has no kernel maps: gpu.js computes this one on its cpu backend, correctly,
    // and only warns on the console.
    const map = gpu.createKernelMap(
      { doubled: function (v: number) { return 2 * v; } },
      function (this: { thread: { x: number } }, a: number[]) {
        // @ts-expect-error doubled is a gpu.js sub-kernel, resolved by name when transpiled
        return doubled(a[this.thread.x]) + 1;
      },
      { output: [3], precision: 'single' },
    ) as unknown as IKernelRunShortcut;
    const result = map(new Float32Array([1, 2, 3])) as unknown as { result: Float32Array };
    expect(Array.from(result.result)).toEqual([3, 5, 7]);
    expect(ranOn(map)).toBe('cpu');
    let error: unknown;
    try {
      assertRanOn(map, 'webasm', 'map');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BackendFallbackError);
    expect((error as BackendFallbackError).expected).toBe('webasm');
    expect((error as BackendFallbackError).found).toBe('cpu');
    expect((error as Error).message).toMatch(/kernel maps are not supported/);
  });
});
