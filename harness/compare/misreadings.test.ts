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
  for (const [d, kind] of [['int4-ct-g32', 'group-size-mismatch'], ['int4-awq-g32', 'group-size-mismatch'], ['int4-gptq-g64-asym', 'group-size-mismatch'], ['nvfp4', 'global-scale-applied-twice']] as const) {
    it(`${d}: ${kind} changes the dequantized weights and is diagnosed as itself`, () => {
      const { scheme, stored } = rank(d);
      const m = MISREADINGS.find((x) => x.kind === kind)!;
      expect(m.applies(scheme)).toBe(true);
      const right = dequantizeCanonical(stored, scheme, WHOLE);
      const wrong = m.serve(stored, scheme, WHOLE);
      const w13 = 'layers.0.experts.w13';
      expect(wrong.get(w13)!.bytes).not.toEqual(right.get(w13)!.bytes);
      const diagnosis = diagnoseCanonical(right, wrong, { req: WHOLE, quantized: scheme.method, stored: { scheme, tensors: stored } });
      // w13 always differs; w2 where its K (I = 64) holds more than one group.
      expect(diagnosis[0]).toMatchObject({ tensor: w13, kind });
      expect(new Set(diagnosis.map((x) => x.kind))).toEqual(new Set([kind]));
      // The right dequantization has nothing to diagnose; without the stored rank the kind cannot be told.
      expect(diagnoseCanonical(right, right, { req: WHOLE, quantized: scheme.method, stored: { scheme, tensors: stored } })).toEqual([]);
      expect(diagnoseCanonical(right, wrong, { req: WHOLE, quantized: scheme.method }).map((x) => x.kind)).not.toContain(kind);
    });
  }

  it('applies only where it can happen: groups of 128 and activation order are not misread as 128, FP8 has no weight_scale_2', () => {
    const group = MISREADINGS.find((x) => x.kind === 'group-size-mismatch')!;
    for (const d of ['int4-ct-g128', 'int4-awq-g128', 'int4-gptq-g32-desc-act', 'int4-ct-g32-actorder', 'fp8'] as const) expect(group.applies(QUANT_DTYPES[d]), d).toBe(false);
    expect(MISREADINGS.find((x) => x.kind === 'global-scale-applied-twice')!.applies(QUANT_DTYPES['fp8-tensor'])).toBe(false);
  });
});
