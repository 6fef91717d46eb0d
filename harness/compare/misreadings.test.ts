// The known misreadings of quantized checkpoints: each gives plausible F32 weights that differ
// from the format's dequantization, and the diagnosis names it (and only it) by redoing it.
import { describe, expect, it } from 'vitest';
import { ModelConfig } from '../checkpoint/config.js';
import { buildConfig } from '../writer/config.js';
import { moeLayoutsOf } from '../quant/layout.js';
import { randomQuantizedCanonical } from '../quant/random.js';
import { dequantizeCanonical } from '../quant/dequantize.js';
import { QUANT_DTYPES, type QuantDtypeName } from '../quant/formats/index.js';
import { quantizationConfig } from '../quant/scheme.js';
import { WHOLE } from '../tensor.js';
import { diagnoseCanonical } from './diagnose.js';
import { MISREADINGS } from './misreadings.js';

function rank(d: QuantDtypeName) {
  const scheme = QUANT_DTYPES[d];
  const config = new ModelConfig({ ...buildConfig({ modelType: 'qwen3_moe', experts: 2, hidden: 128, intermediate: 64, topK: 1, layers: 1 }, 'bfloat16'), quantization_config: quantizationConfig(scheme) });
  const { dims } = moeLayoutsOf(config, scheme);
  return { scheme, stored: randomQuantizedCanonical(dims, scheme, 7) };
}

describe('misreadings of quantized checkpoints', () => {
  for (const [d, id, kind] of [
    ['int4-ct-g32', 'int4-group-size-assumed-128', 'group-size-mismatch'],
    ['int4-awq-g32', 'int4-group-size-assumed-128', 'group-size-mismatch'],
    ['int4-gptq-g64-asym', 'int4-group-size-assumed-128', 'group-size-mismatch'],
    ['nvfp4', 'nvfp4-scale-2-applied-twice', 'global-scale-applied-twice'],
    ['int4-ct-g64-asym', 'int4-zero-point-ignored', 'dequantized-differently'],
    // GPTQ v1 read as v2 and v2 read as v1: one scale step up or down, symmetric or not.
    ['int4-gptq-g32', 'gptq-zero-convention-confused', 'zero-point-off-by-one'],
    ['int4-gptq-g64-asym', 'gptq-zero-convention-confused', 'zero-point-off-by-one'],
    ['int4-gptq-v2-g32-asym', 'gptq-zero-convention-confused', 'zero-point-off-by-one'],
    // Activation order ignored: consecutive groups where g_idx names others.
    ['int4-gptq-g32-desc-act', 'int4-g-idx-ignored', 'group-index-misapplied'],
    ['int4-ct-g32-actorder', 'int4-g-idx-ignored', 'group-index-misapplied'],
    // One w13 g_idx per expert (vLLM's fused MoE): up's, loaded last, used for gate's columns too; or gate's for up's.
    ['int4-gptq-g32-desc-act', 'up-g-idx-for-both', 'group-index-misapplied'],
    ['int4-ct-g32-actorder', 'gate-g-idx-for-both', 'group-index-misapplied'],
    // Gate's and up's per-projection scales swapped or merged (FP8 per tensor, NVFP4 weight_scale_2 per projection).
    ['fp8-tensor', 'gate-up-scales-swapped', 'gate-up-swapped'],
    ['fp8-ct-tensor', 'gate-scale-for-both', 'gate-up-scales-merged'],
    ['fp8-modelopt', 'up-scale-for-both', 'gate-up-scales-merged'],
    ['nvfp4', 'gate-scale-for-both', 'gate-up-scales-merged'],
    ['nvfp4', 'gate-up-scales-swapped', 'gate-up-swapped'],
    // The maximum of the two for both, the codes not requantized to it.
    ['fp8-tensor', 'max-scale-for-both', 'gate-up-scales-merged'],
    ['nvfp4', 'max-scale-for-both', 'gate-up-scales-merged'],
  ] as const) {
    it(`${d}: ${id} changes the dequantized weights and is diagnosed as ${kind}`, () => {
      const { scheme, stored } = rank(d);
      const m = MISREADINGS.find((x) => x.id === id)!;
      expect(m.applies(scheme)).toBe(true);
      const right = dequantizeCanonical(stored, scheme, WHOLE);
      const wrong = m.serve(stored, scheme, WHOLE);
      const w13 = 'layers.0.experts.w13';
      expect(wrong.get(w13)!.bytes).not.toEqual(right.get(w13)!.bytes);
      const diagnosis = diagnoseCanonical(right, wrong, { req: WHOLE, quantized: scheme.method, stored: { scheme, tensors: stored } });
      // w13 always differs; w2 where its K (I = 64) holds more than one group.
      expect(diagnosis[0]).toMatchObject({ tensor: w13, kind, detail: m.what(scheme) });
      expect(new Set(diagnosis.map((x) => x.kind))).toEqual(new Set([kind]));
      // The right dequantization has nothing to diagnose; without the stored rank the kind cannot be told.
      expect(diagnoseCanonical(right, right, { req: WHOLE, quantized: scheme.method, stored: { scheme, tensors: stored } })).toEqual([]);
      // (A kind that is also the generic one, dequantized-differently, then comes with the generic detail.)
      expect(diagnoseCanonical(right, wrong, { req: WHOLE, quantized: scheme.method }).filter((x) => x.kind === kind && (kind !== 'dequantized-differently' || x.detail.includes(m.what(scheme))))).toEqual([]);
    });
  }

  it('names the direction of a GPTQ zero convention confused, and the group an act-order column took on a TP rank', () => {
    const zeros = MISREADINGS.find((x) => x.id === 'gptq-zero-convention-confused')!;
    expect(zeros.what(QUANT_DTYPES['int4-gptq-g32'])).toMatch(/^GPTQ v1 zeros .* read as v2 .* one scale step above/);
    expect(zeros.what(QUANT_DTYPES['int4-gptq-v2-g32-asym'])).toMatch(/^GPTQ v2 zeros .* read as v1 .* one scale step below/);
    // TP rank 1 of 2 of w2 under desc_act (its scales and zeros whole, its g_idx the rank's columns' groups): the columns' own positions are global.
    const { scheme, stored } = rank('int4-gptq-g32-desc-act');
    const req = { ...WHOLE, tpSize: 2, tpRank: 1 };
    const w2 = stored.get('layers.0.experts.w2')!;
    const gIdx = stored.get('layers.0.experts.w2_g_idx')!;
    const [E, H, words] = w2.shape as [number, number, number];
    const half = words / 2;
    const cols = (t: typeof w2, per: number, width: number, elem: number) => {
      const out = new Uint8Array(t.bytes.length / 2);
      for (let r = 0; r < t.bytes.length / (per * elem); r++) out.set(t.bytes.subarray((r * per + width) * elem, (r * per + 2 * width) * elem), r * width * elem);
      return out;
    };
    const rankOf = new Map([
      ['layers.0.experts.ids', stored.get('layers.0.experts.ids')!],
      ['layers.0.experts.w2', { ...w2, shape: [E, H, half], bytes: cols(w2, words, half, 4) }],
      ['layers.0.experts.w2_scale', stored.get('layers.0.experts.w2_scale')!],
      ['layers.0.experts.w2_zero', stored.get('layers.0.experts.w2_zero')!],
      ['layers.0.experts.w2_g_idx', { ...gIdx, shape: [E, gIdx.shape[1]! / 2], bytes: cols(gIdx, gIdx.shape[1]!, gIdx.shape[1]! / 2, 4) }],
    ]);
    const m = MISREADINGS.find((x) => x.id === 'int4-g-idx-ignored')!;
    const right = dequantizeCanonical(rankOf, scheme, req);
    const wrong = m.serve(rankOf, scheme, req);
    const ds = diagnoseCanonical(right, wrong, { req, quantized: scheme.method, stored: { scheme, tensors: rankOf } });
    expect(ds.map((x) => [x.tensor, x.kind])).toEqual([['layers.0.experts.w2', 'group-index-misapplied']]);
    // Without the rank's offset (columns taken as 0 .. Ir), the same loader's values are another misreading that is not named so.
    const local = dequantizeCanonical(new Map([...rankOf, ['layers.0.experts.w2_g_idx', { ...gIdx, shape: [E, gIdx.shape[1]! / 2], bytes: new Uint8Array(Int32Array.from({ length: E * (gIdx.shape[1]! / 2) }, (_, k) => Math.floor((k % (gIdx.shape[1]! / 2)) / 32)).buffer) }]]), scheme, req);
    expect(diagnoseCanonical(right, local, { req, quantized: scheme.method, stored: { scheme, tensors: rankOf } }).map((x) => x.kind)).not.toContain('group-index-misapplied');
  });

  it('applies only where it can happen: groups of 128 and activation order are not misread as 128, FP8 has no weight_scale_2', () => {
    const group = MISREADINGS.find((x) => x.kind === 'group-size-mismatch')!;
    for (const d of ['int4-ct-g128', 'int4-awq-g128', 'int4-gptq-g32-desc-act', 'int4-ct-g32-actorder', 'fp8'] as const) expect(group.applies(QUANT_DTYPES[d]), d).toBe(false);
    expect(MISREADINGS.find((x) => x.kind === 'global-scale-applied-twice')!.applies(QUANT_DTYPES['fp8-tensor'])).toBe(false);
    // Act order only where there is one; GPTQ's zero convention only on GPTQ; gate/up scale pairs only where the canonical pair can differ.
    const by = (id: string) => MISREADINGS.find((x) => x.id === id)!;
    for (const d of ['int4-gptq-g32', 'int4-ct-g32', 'int4-awq-g32'] as const) expect(by('int4-g-idx-ignored').applies(QUANT_DTYPES[d]), d).toBe(false);
    for (const d of ['int4-ct-g64-asym', 'int4-awq-g32', 'nvfp4'] as const) expect(by('gptq-zero-convention-confused').applies(QUANT_DTYPES[d]), d).toBe(false);
    for (const d of ['nvfp4-merged', 'nvfp4-tensor', 'fp8-modelopt-tensor', 'fp8-ct-channel', 'fp8', 'int4-gptq-g32'] as const) expect(by('gate-scale-for-both').applies(QUANT_DTYPES[d]), d).toBe(false);
  });
});
