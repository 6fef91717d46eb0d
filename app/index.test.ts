// The package entry point wires the layers together: a user who imports only
// 'moe-conformance' can load both layouts of a fixture and compare them.
import { describe, expect, it } from 'vitest';
import * as lib from './index.js';

describe('moe-conformance entry point', () => {
  it('loads both layouts of a golden fixture to the same canonical tensors through the public API', async () => {
    const root = 'golden/hf/qwen2_moe-bf16';
    const req = { ...lib.WHOLE, tpSize: 2, tpRank: 1 };
    const original = await lib.referenceLoader.load(`${root}/original`, req);
    const fused = await lib.referenceLoader.load(`${root}/fused`, req);
    expect(original.get('layers.0.experts.w13')?.shape).toEqual([8, 20, 48]);
    expect(lib.firstDifference(original, fused)).toBeUndefined();
  });

  it('exports the typed errors that a caller catches', () => {
    expect(new lib.HeaderTooSmall('x', { file: 'a.safetensors' })).toBeInstanceOf(lib.MoeConformanceError);
    expect(lib.MODEL_TYPES.length).toBeGreaterThanOrEqual(32);
  });
});
