// INT4 zero points and activation-order group indices rewritten by a loader that serves the
// quantized form (spec §4): each is named for what the loader did, not as 're-quantized'.
import { describe, expect, it } from 'vitest';
import { ModelConfig } from '../checkpoint/config.js';
import { buildConfig } from '../writer/config.js';
import { moeLayoutsOf } from '../quant/layout.js';
import { randomQuantizedCanonical } from '../quant/random.js';
import { QUANT_DTYPES, type QuantDtypeName } from '../quant/formats/index.js';
import { quantizationConfig } from '../quant/scheme.js';
import type { Canonical, ParallelRequest, Tensor } from '../tensor.js';
import { WHOLE } from '../tensor.js';
import { diagnoseCanonical } from './diagnose.js';
import { int32Values } from './locate.js';

function whole(d: QuantDtypeName) {
  const scheme = QUANT_DTYPES[d];
  const config = new ModelConfig({ ...buildConfig({ modelType: 'qwen3_moe', experts: 3, hidden: 64, intermediate: 128, topK: 1, layers: 1 }, 'bfloat16'), quantization_config: quantizationConfig(scheme) });
  const { dims } = moeLayoutsOf(config, scheme);
  return { scheme, stored: randomQuantizedCanonical(dims, scheme, 5) };
}

const i32 = (t: Tensor, values: number[]): Tensor => ({ ...t, bytes: new Uint8Array(Int32Array.from(values).buffer) });
const ZERO = 'layers.0.experts.w13_zero';
const W13_G = 'layers.0.experts.w13_g_idx';
const W2_G = 'layers.0.experts.w2_g_idx';

/** Every 4-bit code of an I32 tensor moved by d (mod 16). */
function nibblesPlus(t: Tensor, d: number): Tensor {
  const w = new Uint32Array(t.bytes.slice().buffer);
  for (let i = 0; i < w.length; i++) {
    let v = 0;
    for (let k = 0; k < 8; k++) v |= ((((w[i]! >>> (4 * k)) & 15) + d + 16) & 15) << (4 * k);
    w[i] = v >>> 0;
  }
  return { ...t, bytes: new Uint8Array(w.buffer) };
}

/** Columns [r*n/T, (r+1)*n/T) of the last axis. */
function cutLast(t: Tensor, T: number, r: number): Tensor {
  const v = int32Values(t)!;
  const n = t.shape[t.shape.length - 1]!;
  const w = n / T;
  return i32({ ...t, shape: [...t.shape.slice(0, -1), w] }, v.filter((_, k) => Math.floor((k % n) / w) === r));
}

const diagnose = (d: QuantDtypeName, expected: Canonical, found: Canonical, req: ParallelRequest = WHOLE, wholeC?: Canonical) => {
  const { scheme } = whole(d);
  return diagnoseCanonical(expected, found, { req, quantized: scheme.method, stored: { scheme, tensors: expected }, ...(wholeC && { whole: wholeC }) });
};

describe('INT4 zero points rewritten', () => {
  for (const [d, delta, detail] of [
    ['int4-gptq-g64-asym', 1, /^every 4-bit zero point one more than the checkpoint's \(mod 16\): GPTQ v1 zeros \(stored z - 1, checkpoint_format "gptq"\) converted to v2's z/],
    ['int4-gptq-g32', 1, /^every 4-bit zero point one more .*GPTQ v1 zeros .* converted to v2's z/],
    ['int4-gptq-v2-g32-asym', -1, /^every 4-bit zero point one less than the checkpoint's \(mod 16\): GPTQ v2 zeros \(stored z, checkpoint_format "gptq_v2"\) written in v1's z - 1/],
    ['int4-ct-g64-asym', 1, /^every 4-bit zero point one more than the checkpoint's \(mod 16\)$/],
    // The same conventions moved the other way: a loader that takes v1 zeros for v2 and lowers them, or v2 zeros for v1 and raises them.
    ['int4-gptq-g64-asym', -1, /^every 4-bit zero point one less than the checkpoint's \(mod 16\): GPTQ v1 zeros \(stored z - 1\) lowered once more$/],
    ['int4-gptq-v2-g32-asym', 1, /^every 4-bit zero point one more than the checkpoint's \(mod 16\): GPTQ v2 zeros \(stored z\) raised by one$/],
  ] as const) {
    it(`${d}: zeros ${delta > 0 ? '+' : '-'}1 named, with GPTQ's conventions where the checkpoint is GPTQ`, () => {
      const { stored } = whole(d);
      const expected = new Map([...stored].filter(([k]) => k === ZERO || k.endsWith('.ids')));
      const ds = diagnose(d, expected, new Map(expected).set(ZERO, nibblesPlus(stored.get(ZERO)!, delta)));
      expect(ds.map((x) => [x.tensor, x.kind])).toEqual([[ZERO, 'zero-point-off-by-one']]);
      expect(ds[0]!.detail).toMatch(detail);
      // Two steps is not one: not named so.
      expect(diagnose(d, expected, new Map(expected).set(ZERO, nibblesPlus(stored.get(ZERO)!, 2 * delta))).map((x) => x.kind)).not.toContain('zero-point-off-by-one');
    });
  }
});

describe('INT4 activation-order group indices rewritten', () => {
  for (const d of ['int4-gptq-g32-desc-act', 'int4-ct-g32-actorder'] as const) {
    it(`${d}: g_idx in column order (dropped) at TP 1 and on TP rank 1 of 2 (global columns)`, () => {
      const { stored } = whole(d);
      for (const [req, T] of [[WHOLE, 1], [{ ...WHOLE, tpSize: 2, tpRank: 1 }, 2]] as const) {
        const expected = new Map<string, Tensor>([['layers.0.experts.ids', stored.get('layers.0.experts.ids')!], [W2_G, cutLast(stored.get(W2_G)!, T, req.tpRank)]]);
        const g = expected.get(W2_G)!;
        const cols = g.shape[1]!;
        const columnOrder = i32(g, int32Values(g)!.map((_, k) => Math.floor((req.tpRank * cols + (k % cols)) / 32)));
        const ds = diagnose(d, expected, new Map(expected).set(W2_G, columnOrder), req);
        expect(ds.map((x) => [x.tensor, x.kind])).toEqual([[W2_G, 'group-index-misapplied']]);
        expect(ds[0]!.detail).toMatch(/^g_idx in column order \(column j in group floor\(j \/ 32\)\): the checkpoint's activation-order group indices dropped/);
      }
    });
  }

  it('w2 g_idx on TP rank 1 of 2: rebased to the rank\'s first group, or TP rank 0\'s columns (not cut)', () => {
    const d = 'int4-gptq-g32-desc-act';
    const { stored } = whole(d);
    const req = { ...WHOLE, tpSize: 2, tpRank: 1 };
    const expected = new Map<string, Tensor>([['layers.0.experts.ids', stored.get('layers.0.experts.ids')!], [W2_G, cutLast(stored.get(W2_G)!, 2, 1)]]);
    const g = expected.get(W2_G)!;
    const rebased = diagnose(d, expected, new Map(expected).set(W2_G, i32(g, int32Values(g)!.map((v) => v - 2))), req);
    expect(rebased.map((x) => x.kind)).toEqual(['group-index-misapplied']);
    expect(rebased[0]!.detail).toMatch(/^g_idx rebased to the rank's first group \(each minus 1·64\/32 = 2\)/);
    const rank0 = diagnose(d, expected, new Map(expected).set(W2_G, cutLast(stored.get(W2_G)!, 2, 0)), req, stored);
    expect(rank0.map((x) => x.kind)).toEqual(['group-index-misapplied']);
    expect(rank0[0]!.detail).toMatch(/^g_idx of TP rank 0's columns 0..64 on TP rank 1\/2 \(g_idx not cut for TP: its first columns taken\)/);
  });

  it('w13 g_idx: gate\'s and up\'s swapped, or up\'s for both (one w13_g_idx per expert)', () => {
    const d = 'int4-ct-g32-actorder';
    const { stored } = whole(d);
    const expected = new Map<string, Tensor>([['layers.0.experts.ids', stored.get('layers.0.experts.ids')!], [W13_G, stored.get(W13_G)!]]);
    const v = int32Values(stored.get(W13_G)!)!;
    const H = stored.get(W13_G)!.shape[2]!;
    const half = (e: number, h: number) => v.slice((2 * e + h) * H, (2 * e + h + 1) * H);
    const rewrite = (f: (e: number) => number[]) => new Map(expected).set(W13_G, i32(stored.get(W13_G)!, [0, 1, 2].flatMap(f)));
    const swapped = diagnose(d, expected, rewrite((e) => [...half(e, 1), ...half(e, 0)]));
    expect(swapped).toMatchObject([{ tensor: W13_G, kind: 'gate-up-swapped', detail: "experts 0–2: gate's and up's g_idx swapped" }]);
    const up = diagnose(d, expected, rewrite((e) => [...half(e, 1), ...half(e, 1)]));
    expect(up.map((x) => x.kind)).toEqual(['group-index-misapplied']);
    expect(up[0]!.detail).toMatch(/^experts 0–2: up's g_idx used for gate too: one g_idx per expert for the fused w13/);
    // Another permutation of the groups is none of these.
    const other = diagnose(d, expected, rewrite((e) => [...half(e, 0)].reverse().concat(half(e, 1))));
    expect(other.map((x) => x.kind)).not.toContain('group-index-misapplied');
    expect(other.map((x) => x.kind)).not.toContain('gate-up-swapped');
  });
});
