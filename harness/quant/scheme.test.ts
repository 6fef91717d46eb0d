import { describe, expect, it } from 'vitest';
import { WHOLE, type Canonical, type Tensor } from '../tensor.js';
import { dequantizeCanonical, dequantizeRanks } from './dequantize.js';
import { QuantConfigError, ScaleMismatch } from './errors.js';
import { declaresDequantized, DEQUANTIZED_METADATA_KEY, fp8Scheme, MXFP4_SCHEME, quantizationConfig, quantSchemeOf } from './scheme.js';
import { QUANT_DTYPES } from './formats/index.js';
import { variantsOf } from './layout.js';
import { fp8StaticScheme } from './formats/fp8-static.js';

describe('quantization_config', () => {
  it('reads fp8 with a block size, mxfp4, ModelOpt NVFP4; no config means unquantized', () => {
    expect(quantSchemeOf({})).toBeUndefined();
    expect(quantSchemeOf({ quantization_config: null })).toBeUndefined();
    expect(quantSchemeOf({ quantization_config: { quant_method: 'fp8', weight_block_size: [64, 32] } })).toEqual(fp8Scheme({ rows: 64, cols: 32 }));
    expect(quantSchemeOf({ quantization_config: { quant_method: 'mxfp4' } })).toEqual(MXFP4_SCHEME);
    expect(quantSchemeOf({ quantization_config: { quant_method: 'modelopt', quant_algo: 'NVFP4' } })).toEqual(QUANT_DTYPES.nvfp4);
    expect(quantSchemeOf({ quantization_config: { quant_method: 'modelopt', quantization: { quant_algo: 'NVFP4', group_size: 16 } } })).toEqual(QUANT_DTYPES.nvfp4);
  });

  it('fp8 without weight_block_size is static per-tensor FP8, never block scales (spec/layouts.md §4.2)', () => {
    expect(quantSchemeOf({ quantization_config: { quant_method: 'fp8', fmt: 'e4m3' } })).toEqual(fp8StaticScheme('fp8', 'tensor', false));
    expect(quantSchemeOf({ quantization_config: { quant_method: 'fp8', activation_scheme: 'static' } })).toEqual(fp8StaticScheme('fp8', 'tensor', true));
    expect(quantSchemeOf({ quantization_config: { quant_method: 'modelopt', quant_algo: 'FP8' } })).toEqual(fp8StaticScheme('modelopt', 'tensor', true));
    const ct = (strategy: string, input: unknown) => ({ quant_method: 'compressed-tensors', format: 'float-quantized', config_groups: { group_0: { weights: { num_bits: 8, type: 'float', strategy }, input_activations: input } } });
    expect(quantSchemeOf({ quantization_config: ct('channel', null) })).toEqual(fp8StaticScheme('compressed-tensors', 'channel', false));
    expect(quantSchemeOf({ quantization_config: ct('tensor', { dynamic: false, strategy: 'tensor' }) })).toEqual(fp8StaticScheme('compressed-tensors', 'tensor', true));
    expect(quantSchemeOf({ quantization_config: ct('tensor', { dynamic: true, strategy: 'token' }) })).toEqual(fp8StaticScheme('compressed-tensors', 'tensor', false));
    expect(() => quantSchemeOf({ quantization_config: ct('block', null) })).toThrow(QuantConfigError);
  });

  it('the configs generated checkpoints declare read back as their schemes', () => {
    // NVFP4's global-scale variants and quantized shared experts share one config (the stored shapes tell them apart): each reads back as a variant of the scheme it names.
    for (const scheme of Object.values(QUANT_DTYPES)) {
      const read = quantSchemeOf({ quantization_config: quantizationConfig(scheme) })!;
      expect(variantsOf(read)).toContainEqual(scheme);
    }
    expect(quantSchemeOf({ quantization_config: quantizationConfig(fp8Scheme({ rows: 4, cols: 6 })) })).toEqual(fp8Scheme({ rows: 4, cols: 6 }));
  });

  it('refuses other methods, other FP8 formats and malformed configs', () => {
    for (const q of ['fp8', [1], { quant_method: 'awq' }, { quant_method: 'fp8', fmt: 'e5m2' }, { quant_method: 'fp8', weight_block_size: [128] }, { quant_method: 'modelopt', quant_algo: 'NVFP4', group_size: 32 }, { quant_method: 'modelopt', quant_algo: 'W4A8_AWQ' }]) {
      expect(() => quantSchemeOf({ quantization_config: q })).toThrow(QuantConfigError);
    }
    // What was found is shown field by field as JSON: never "undefined" or "[object Object]".
    const ct = (weights: Record<string, unknown>) => ({ quant_method: 'compressed-tensors', format: 'pack-quantized', config_groups: { group_0: { weights } } });
    for (const q of [ct({}), { quant_method: { a: 1 } }, { quant_method: 'compressed-tensors', format: {} }, ct({ num_bits: 8, type: 'int' })]) {
      let message = '';
      try {
        quantSchemeOf({ quantization_config: q });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, JSON.stringify(q)).toMatch(/found /);
      expect(message, JSON.stringify(q)).not.toMatch(/undefined|\[object Object\]/);
    }
  });
});

describe('the dequantized declaration', () => {
  it('is the metadata key set to "true"; absent or "false" means quantized; anything else is refused', () => {
    expect(declaresDequantized(undefined)).toBe(false);
    expect(declaresDequantized({ format: 'pt' })).toBe(false);
    expect(declaresDequantized({ [DEQUANTIZED_METADATA_KEY]: 'false' })).toBe(false);
    expect(declaresDequantized({ [DEQUANTIZED_METADATA_KEY]: 'true' })).toBe(true);
    expect(() => declaresDequantized({ [DEQUANTIZED_METADATA_KEY]: 'yes' })).toThrow(QuantConfigError);
  });
});

describe('dequantizeCanonical', () => {
  const u8 = (shape: number[]) => ({ dtype: 'U8' as const, shape, bytes: new Uint8Array(shape.reduce((a, b) => a * b, 1)) });
  const router = { dtype: 'F32' as const, shape: [1, 32], bytes: new Uint8Array(128) };
  it('replaces weights and scales by F32 weights and passes the rest through unchanged', () => {
    const c: Canonical = new Map<string, Tensor>([
      ['layers.0.experts.w13', u8([1, 2, 1, 16])],
      ['layers.0.experts.w13_scale', u8([1, 2, 1])],
      ['layers.0.experts.w2', u8([1, 32, 1, 16])],
      ['layers.0.experts.w2_scale', u8([1, 32, 1])],
      ['layers.0.router.weight', router],
    ]);
    const out = dequantizeCanonical(c, MXFP4_SCHEME, WHOLE);
    expect([...out.keys()].sort()).toEqual(['layers.0.experts.w13', 'layers.0.experts.w2', 'layers.0.router.weight']);
    expect(out.get('layers.0.experts.w13')!.shape).toEqual([1, 2, 32]);
    expect(out.get('layers.0.experts.w2')!.shape).toEqual([1, 32, 32]);
    expect(out.get('layers.0.router.weight')).toBe(router);
  });

  it('dequantizeRanks: quantized ranks dequantized, dequantized ranks kept, so twice is once; unscaled F8 refused', () => {
    const q = new Map<string, Tensor>([
      ['layers.0.experts.w13', u8([1, 2, 1, 16])],
      ['layers.0.experts.w13_scale', u8([1, 2, 1])],
    ]);
    const once = dequantizeRanks(MXFP4_SCHEME, [{ req: WHOLE, tensors: q }]);
    expect(once[0]!.tensors.get('layers.0.experts.w13')!.dtype).toBe('F32');
    const twice = dequantizeRanks(MXFP4_SCHEME, once);
    expect(twice[0]!.tensors).toBe(once[0]!.tensors);
    const float = [{ req: WHOLE, tensors: q }];
    expect(dequantizeRanks(undefined, float)).toBe(float);
    const unscaled = new Map<string, Tensor>([['layers.0.experts.w2', { dtype: 'F8_E4M3', shape: [1, 1, 1], bytes: new Uint8Array(1) }]]);
    expect(() => dequantizeRanks(fp8Scheme({ rows: 1, cols: 1 }), [{ req: WHOLE, tensors: unscaled }])).toThrow(ScaleMismatch);
  });

  it('refuses a weight without its scale and a scale without its weight', () => {
    expect(() => dequantizeCanonical(new Map([['layers.0.experts.w13', u8([1, 2, 1, 16])]]), MXFP4_SCHEME, WHOLE)).toThrow(ScaleMismatch);
    expect(() => dequantizeCanonical(new Map([['layers.0.experts.w2_scale', u8([1, 32, 1])]]), MXFP4_SCHEME, WHOLE)).toThrow(ScaleMismatch);
  });
});
