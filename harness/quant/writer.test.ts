// Generated quantized checkpoints: random whole quantized canonical weights written by the
// writer in both layouts and loaded back by the reference loader, whole and per rank.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelConfig } from '../checkpoint/config.js';
import { assertBitIdentical } from '../compare/bits.js';
import { MissingTensor, ShapeMismatch, UnrecognisedTensor } from '../layouts/errors.js';
import { writeCheckpointDir } from '../checkpoint/write.js';
import { InvalidParallelRequest } from '../canonical/errors.js';
import { WriterInputError } from '../writer/errors.js';
import { loadCanonical } from '../loader/load.js';
import { WHOLE, type ParallelRequest } from '../tensor.js';
import { buildConfig, type ModelSizes } from '../writer/config.js';
import { storedTensors, writeMoeCheckpoint } from '../writer/write-checkpoint.js';
import { dequantizeCanonical } from './dequantize.js';
import { QuantConfigError, QuantizedRouter } from './errors.js';
import { moeLayoutsOf } from './layout.js';
import { randomQuantizedCanonical } from './random.js';
import { QUANT_DTYPES } from './formats/index.js';
import { quantizationConfig, type QuantScheme } from './scheme.js';

const scratch = mkdtempSync(join(tmpdir(), 'moe-quant-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const seed = Number(process.env.FC_SEED ?? 42);
let n = 0;
const fresh = () => join(scratch, String(n++));

function configOf(sizes: ModelSizes, quant: Record<string, unknown>): ModelConfig {
  return new ModelConfig({ ...buildConfig(sizes, 'bfloat16'), quantization_config: quant });
}

// Rectangular 4x6 FP8 blocks over H = 20, I = 12: every axis ends in a partial block, and
// TP 2 and 3 (6 and 4 rows per rank) start ranks inside blocks.
const FP8 = { quant_method: 'fp8', weight_block_size: [4, 6] };
const CASES: Array<{ sizes: ModelSizes; quant: Record<string, unknown>; tp: number[]; scheme?: QuantScheme }> = [
  { sizes: { modelType: 'qwen3_moe', experts: 5, hidden: 20, intermediate: 12, topK: 2, layers: 2 }, quant: FP8, tp: [2, 3] },
  { sizes: { modelType: 'mixtral', experts: 3, hidden: 20, intermediate: 12, topK: 2, layers: 1 }, quant: FP8, tp: [3] },
  { sizes: { modelType: 'deepseek_v3', experts: 4, hidden: 20, intermediate: 12, sharedIntermediate: 24, topK: 2, layers: 1 }, quant: FP8, tp: [2] },
  { sizes: { modelType: 'gpt_oss', experts: 3, hidden: 64, intermediate: 64, topK: 2, layers: 2 }, quant: { quant_method: 'mxfp4' }, tp: [2] },
  // NVFP4: per-expert (B, A), fused v5, and granitemoe's fused `input_linear.weight` (F); TP in whole 16-element blocks.
  { sizes: { modelType: 'qwen3_moe', experts: 5, hidden: 32, intermediate: 32, topK: 2, layers: 2 }, quant: quantizationConfig(QUANT_DTYPES.nvfp4), tp: [2] },
  { sizes: { modelType: 'mixtral', experts: 3, hidden: 16, intermediate: 48, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES.nvfp4), tp: [3] },
  { sizes: { modelType: 'granitemoe', experts: 3, hidden: 16, intermediate: 32, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES.nvfp4), tp: [2] },
  // MXFP4 beyond gpt_oss: per expert (B, A), fused v5 and granitemoe's input_linear (F), packed U8 with U8 E8M0 weight_scale; TP in whole 32-element blocks.
  ...(['qwen3_moe', 'mixtral', 'granitemoe'] as const).flatMap((modelType) => (['mxfp4', 'mxfp4-ct'] as const).map((d) => ({ sizes: { modelType, experts: 3, hidden: 64, intermediate: 96, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES[d]), tp: [3] }))),
  // INT4 groups (compressed-tensors): symmetric and asymmetric, TP in whole groups.
  { sizes: { modelType: 'qwen3_moe', experts: 3, hidden: 64, intermediate: 64, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES['int4-ct-g32']), tp: [2] },
  { sizes: { modelType: 'mixtral', experts: 3, hidden: 64, intermediate: 128, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES['int4-ct-g64-asym']), tp: [2] },
  // GPTQ (v1, zeros stored - 1): symmetric and asymmetric, per expert and fused.
  { sizes: { modelType: 'qwen3_moe', experts: 3, hidden: 64, intermediate: 64, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES['int4-gptq-g32']), tp: [2] },
  { sizes: { modelType: 'mixtral', experts: 3, hidden: 64, intermediate: 128, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES['int4-gptq-g64-asym']), tp: [2] },
  // Activation order: g_idx carried, w2's groups whole on every rank.
  { sizes: { modelType: 'qwen3_moe', experts: 3, hidden: 64, intermediate: 128, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES['int4-gptq-g32-desc-act']), tp: [2, 4] },
  { sizes: { modelType: 'mixtral', experts: 3, hidden: 64, intermediate: 64, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES['int4-ct-g32-actorder']), tp: [2] },
  // AWQ GEMM: packed along the output axis in AWQ's order, per expert and fused.
  { sizes: { modelType: 'qwen3_moe', experts: 3, hidden: 64, intermediate: 64, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES['int4-awq-g32']), tp: [2] },
  // Transposed (llama4_text; qwen3_vl_moe's original, fused v5 beside it), interleaved (gpt_oss, with biases) and flattened (dbrx):
  // every format that packs along `in` and every static FP8 form; AWQ (packed along `out`) where gate and up are not interleaved.
  ...(['llama4_text', 'qwen3_vl_moe', 'gpt_oss', 'dbrx'] as const).flatMap((modelType) =>
    (['mxfp4', 'mxfp4-ct', 'nvfp4', 'nvfp4-merged', 'nvfp4-tensor', 'fp8-tensor', 'fp8-modelopt-tensor', 'fp8-ct-channel', 'int4-ct-g32', 'int4-ct-g64-asym', 'int4-ct-g32-actorder', 'int4-gptq-g32-desc-act', 'int4-gptq-v2-g32-asym', 'int4-awq-g32'] as const)
      .filter((d) => !(modelType === 'gpt_oss' && d.startsWith('int4-awq')))
      .map((d) => ({ sizes: { modelType, experts: 3, hidden: 64, intermediate: 128, sharedIntermediate: modelType === 'llama4_text' ? 128 : 0, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES[d]), scheme: QUANT_DTYPES[d], tp: [2] })),
  ),
  // Quantized shared experts (every format that quantizes them in its dtypes), cut for TP with their companions: deepseek's
  // shared_experts (Is = 2I), qwen2_moe's shared_expert beside its float sigmoid gate, hunyuan's shared_mlp, llama4's shared_expert.
  ...(['fp8-shared', 'mxfp4-shared', 'nvfp4-tensor', 'fp8-ct-channel', 'int4-ct-g32', 'int4-gptq-g32', 'int4-awq-g32'] as const).flatMap((d) =>
    (['deepseek_v3', 'qwen2_moe', 'hunyuan_v1_moe', 'llama4_text'] as const).map((modelType) => ({
      sizes: { modelType, experts: 4, hidden: 64, intermediate: 64, sharedIntermediate: modelType === 'deepseek_v3' ? 128 : 64, topK: 2, layers: 1 },
      quant: quantizationConfig(QUANT_DTYPES[d]),
      scheme: QUANT_DTYPES[d],
      tp: [2],
    })),
  ),
  // Static FP8, every producer's form; no TP constraint.
  ...(['fp8-tensor', 'fp8-modelopt', 'fp8-ct-tensor', 'fp8-ct-channel'] as const).map((d) => ({
    sizes: { modelType: 'qwen3_moe', experts: 5, hidden: 20, intermediate: 12, topK: 2, layers: 1 },
    quant: quantizationConfig(QUANT_DTYPES[d]),
    tp: [2, 3],
  })),
];

describe('quantized checkpoints through the writer and the reference loader', () => {
  for (const { sizes, quant, tp, scheme: variant } of CASES) {
    it(`${sizes.modelType} ${String(quant.quant_method)} ${String(quant.quant_algo ?? quant.format ?? '')} ${variant ? JSON.stringify(variant) : ''}: both layouts load back whole and per TP rank, identically`, async () => {
      const config = configOf(sizes, quant);
      const { dims, scheme } = moeLayoutsOf(config, variant);
      const canonical = randomQuantizedCanonical(dims, scheme!, seed);
      const dirs = { original: fresh(), fused: fresh() };
      for (const layout of ['original', 'fused'] as const) {
        await writeMoeCheckpoint(dirs[layout], { config, layout, canonical, scheme });
        assertBitIdentical(canonical, await loadCanonical(dirs[layout], WHOLE));
      }
      for (const tpSize of tp) {
        for (let tpRank = 0; tpRank < tpSize; tpRank++) {
          const req: ParallelRequest = { tpSize, tpRank, epSize: 2, epRank: tpRank % 2, epPlacement: 'round_robin' };
          const a = await loadCanonical(dirs.original, req);
          assertBitIdentical(a, await loadCanonical(dirs.fused, req));
          // Each rank's dequantized rows are the whole dequantized weights' rows.
          const whole = dequantizeCanonical(canonical, scheme!, WHOLE);
          const mine = dequantizeCanonical(a, scheme!, req);
          const w13 = mine.get('layers.0.experts.w13')!;
          const all = whole.get('layers.0.experts.w13')!;
          const ids = [...new Int32Array(a.get('layers.0.experts.ids')!.bytes.slice().buffer)];
          const [I, H] = [dims.intermediate, dims.hidden];
          const Ir = I / tpSize;
          const f = (t: { bytes: Uint8Array }) => new Float32Array(t.bytes.slice().buffer);
          const got = f(w13);
          const want = f(all);
          ids.forEach((e, slot) => {
            for (let half = 0; half < 2; half++) {
              for (let i = 0; i < Ir; i++) {
                const from = (e * 2 * I + half * I + tpRank * Ir + i) * H;
                const to = (slot * 2 * Ir + half * Ir + i) * H;
                expect(Array.from(got.subarray(to, to + H))).toEqual(Array.from(want.subarray(from, from + H)));
              }
            }
          });
        }
      }
    });
  }

  it('refuses a quantized checkpoint whose scale tensor is missing or of the wrong shape', async () => {
    const config = configOf(CASES[0]!.sizes, FP8);
    const { dims, scheme } = moeLayoutsOf(config);
    const stored = storedTensors({ config, layout: 'original', canonical: randomQuantizedCanonical(dims, scheme!, seed) });
    const key = 'model.layers.1.mlp.experts.4.down_proj.weight_scale_inv';
    expect(stored.get(key)!.shape).toEqual([5, 2]); // ceil(20/4), ceil(12/6)
    const without = new Map(stored);
    without.delete(key);
    const wrong = new Map(stored).set(key, { dtype: 'F32', shape: [5, 3], bytes: new Uint8Array(60) });
    for (const [tensors, error] of [[without, MissingTensor], [wrong, ShapeMismatch]] as const) {
      const dir = fresh();
      await writeCheckpointDir(dir, config.raw, [...tensors]);
      await expect(loadCanonical(dir, WHOLE)).rejects.toThrow(error);
    }
  });

  it('refuses what the formats cannot hold: MXFP4 TP splitting blocks, MXFP4 off 32 (gpt_oss and per expert), shared-expert scales that do not fit', async () => {
    const mx = configOf({ modelType: 'gpt_oss', experts: 2, hidden: 64, intermediate: 64, topK: 1, layers: 1 }, { quant_method: 'mxfp4' });
    const dir = fresh();
    const { dims, scheme } = moeLayoutsOf(mx);
    await writeMoeCheckpoint(dir, { config: mx, layout: 'original', canonical: randomQuantizedCanonical(dims, scheme!, seed) });
    await expect(loadCanonical(dir, { tpSize: 4, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' })).rejects.toThrow(InvalidParallelRequest);
    expect(() => moeLayoutsOf(configOf({ modelType: 'mixtral', experts: 2, hidden: 64, intermediate: 48, topK: 1, layers: 1 }, { quant_method: 'mxfp4' }))).toThrow(ShapeMismatch);
    // A quantized shared expert is held to 32-element blocks too (Is = 48).
    expect(() => moeLayoutsOf(configOf({ modelType: 'qwen2_moe', experts: 2, hidden: 64, intermediate: 64, sharedIntermediate: 48, topK: 1, layers: 1 }, { quant_method: 'mxfp4' }), QUANT_DTYPES['mxfp4-shared'])).toThrow(ShapeMismatch);
    expect(() => moeLayoutsOf(configOf({ modelType: 'gpt_oss', experts: 2, hidden: 48, intermediate: 64, topK: 1, layers: 1 }, { quant_method: 'mxfp4' }))).toThrow(ShapeMismatch);
    // A DeepSeek checkpoint whose shared expert carries FP8 scales on one projection only: its shared expert is read as quantized
    // (the scales say so), and the other projections' missing scales are refused, not read unscaled.
    const ds = configOf({ modelType: 'deepseek_v3', experts: 2, hidden: 20, intermediate: 12, sharedIntermediate: 12, topK: 1, layers: 1 }, FP8);
    const dsDims = moeLayoutsOf(ds);
    const dsDir = fresh();
    const extra = new Map([['model.layers.0.mlp.shared_experts.gate_proj.weight_scale_inv', { dtype: 'F32' as const, shape: [3, 4], bytes: new Uint8Array(48) }]]);
    await writeMoeCheckpoint(dsDir, { config: ds, layout: 'original', canonical: randomQuantizedCanonical(dsDims.dims, dsDims.scheme!, seed), extra });
    await expect(loadCanonical(dsDir, WHOLE)).rejects.toThrow(MissingTensor);
    // A float shared expert with a scale of the wrong grid beside it fits neither form: refused as unrecognised.
    const odd = new Map([['model.layers.0.mlp.shared_experts.gate_proj.weight_scale_inv', { dtype: 'F32' as const, shape: [5, 5], bytes: new Uint8Array(100) }]]);
    const oddDir = fresh();
    await writeMoeCheckpoint(oddDir, { config: ds, layout: 'original', canonical: randomQuantizedCanonical(dsDims.dims, dsDims.scheme!, seed), extra: odd });
    await expect(loadCanonical(oddDir, WHOLE)).rejects.toThrow(UnrecognisedTensor);
  });

  it('MXFP4 outside gpt_oss: the packed U8 weight where the float one is (compressed-tensors: weight_packed), U8 E8M0 weight_scale beside it, by the weight\'s tree (spec/layouts.md §4.6)', () => {
    const shapes = (modelType: string, layout: 'original' | 'fused', d: 'mxfp4' | 'mxfp4-ct' = 'mxfp4') => {
      const config = configOf({ modelType, experts: 2, hidden: 64, intermediate: 32, topK: 1, layers: 1 }, quantizationConfig(QUANT_DTYPES[d]));
      const { dims, scheme } = moeLayoutsOf(config);
      const stored = storedTensors({ config, layout, canonical: randomQuantizedCanonical(dims, scheme!, seed) });
      return Object.fromEntries([...stored].filter(([k]) => /experts\.(1\.|gate_up|down)/.test(k)).map(([k, t]) => [k.replace(/^.*\.(feed_forward|mlp)\./, ''), `${t.dtype} [${t.shape.join(', ')}]`]));
    };
    expect(shapes('qwen3_moe', 'original')).toEqual({
      'experts.1.gate_proj.weight': 'U8 [32, 32]',
      'experts.1.gate_proj.weight_scale': 'U8 [32, 2]',
      'experts.1.up_proj.weight': 'U8 [32, 32]',
      'experts.1.up_proj.weight_scale': 'U8 [32, 2]',
      'experts.1.down_proj.weight': 'U8 [64, 16]',
      'experts.1.down_proj.weight_scale': 'U8 [64, 1]',
    });
    expect(shapes('qwen3_moe', 'fused')).toEqual({
      'experts.gate_up_proj': 'U8 [2, 64, 32]',
      'experts.gate_up_proj_weight_scale': 'U8 [2, 64, 2]',
      'experts.down_proj': 'U8 [2, 64, 16]',
      'experts.down_proj_weight_scale': 'U8 [2, 64, 1]',
    });
    // Transposed (llama4_text): packed along `in`, which is the stored middle axis.
    expect(shapes('llama4_text', 'original')).toMatchObject({
      'experts.gate_up_proj': 'U8 [2, 32, 64]',
      'experts.gate_up_proj_weight_scale': 'U8 [2, 2, 64]',
      'experts.down_proj': 'U8 [2, 16, 64]',
      'experts.down_proj_weight_scale': 'U8 [2, 1, 64]',
    });
    // gpt_oss keeps its published blocks/scales.
    expect(shapes('gpt_oss', 'original')).toMatchObject({ 'experts.gate_up_proj_blocks': 'U8 [2, 64, 2, 16]', 'experts.gate_up_proj_scales': 'U8 [2, 64, 2]' });
    // compressed-tensors mxfp4-pack-quantized: weight_packed, in every layout (gpt_oss's interleaved tree included).
    expect(shapes('qwen3_moe', 'original', 'mxfp4-ct')).toMatchObject({ 'experts.1.gate_proj.weight_packed': 'U8 [32, 32]', 'experts.1.gate_proj.weight_scale': 'U8 [32, 2]', 'experts.1.down_proj.weight_packed': 'U8 [64, 16]' });
    expect(shapes('qwen3_moe', 'fused', 'mxfp4-ct')).toEqual({ 'experts.gate_up_proj_packed': 'U8 [2, 64, 32]', 'experts.gate_up_proj_weight_scale': 'U8 [2, 64, 2]', 'experts.down_proj_packed': 'U8 [2, 64, 16]', 'experts.down_proj_weight_scale': 'U8 [2, 64, 1]' });
    expect(shapes('gpt_oss', 'original', 'mxfp4-ct')).toMatchObject({ 'experts.gate_up_proj_packed': 'U8 [2, 32, 64]', 'experts.gate_up_proj_weight_scale': 'U8 [2, 2, 64]' });
    // Its config is detected, and one that is not MXFP4 (groups of 16) is refused, naming what it found.
    const ct = quantizationConfig(QUANT_DTYPES['mxfp4-ct']);
    expect(moeLayoutsOf(configOf({ modelType: 'mixtral', experts: 2, hidden: 64, intermediate: 32, topK: 1, layers: 1 }, ct)).scheme).toEqual(QUANT_DTYPES['mxfp4-ct']);
    const g16 = JSON.parse(JSON.stringify(ct).replace('"group_size":32', '"group_size":16')) as Record<string, unknown>;
    expect(() => moeLayoutsOf(configOf({ modelType: 'mixtral', experts: 2, hidden: 64, intermediate: 32, topK: 1, layers: 1 }, g16))).toThrow(QuantConfigError);
  });

  it('NVFP4 and static FP8 are stored under the producers\' names and shapes (spec/layouts.md §4.1, §4.2)', () => {
    const sizes: ModelSizes = { modelType: 'qwen3_moe', experts: 2, hidden: 32, intermediate: 16, topK: 1, layers: 1 };
    const shapes = (d: keyof typeof QUANT_DTYPES, layout: 'original' | 'fused') => {
      const config = configOf(sizes, quantizationConfig(QUANT_DTYPES[d]));
      const { dims, scheme } = moeLayoutsOf(config);
      const stored = storedTensors({ config, layout, canonical: randomQuantizedCanonical(dims, scheme!, seed) });
      return Object.fromEntries([...stored].filter(([k]) => k.includes('experts.1.') || k.includes('experts.gate_up') || k.includes('experts.down')).map(([k, t]) => [k.replace('model.layers.0.mlp.', ''), `${t.dtype} [${t.shape.join(', ')}]`]));
    };
    expect(shapes('nvfp4', 'original')).toMatchObject({
      'experts.1.gate_proj.weight': 'U8 [16, 16]',
      'experts.1.gate_proj.weight_scale': 'F8_E4M3 [16, 2]',
      'experts.1.gate_proj.weight_scale_2': 'F32 []',
      'experts.1.gate_proj.input_scale': 'F32 []',
      'experts.1.down_proj.weight': 'U8 [32, 8]',
      'experts.1.down_proj.weight_scale': 'F8_E4M3 [32, 1]',
    });
    expect(shapes('nvfp4', 'fused')).toEqual({
      'experts.gate_up_proj': 'U8 [2, 32, 16]',
      'experts.gate_up_proj_weight_scale': 'F8_E4M3 [2, 32, 2]',
      'experts.gate_up_proj_weight_scale_2': 'F32 [2, 2]',
      'experts.gate_up_proj_input_scale': 'F32 [2, 2]',
      'experts.down_proj': 'U8 [2, 32, 8]',
      'experts.down_proj_weight_scale': 'F8_E4M3 [2, 32, 1]',
      'experts.down_proj_weight_scale_2': 'F32 [2]',
      'experts.down_proj_input_scale': 'F32 [2]',
    });
    expect(shapes('fp8-tensor', 'original')).toMatchObject({ 'experts.1.up_proj.weight': 'F8_E4M3 [16, 32]', 'experts.1.up_proj.weight_scale': 'F32 []', 'experts.1.up_proj.input_scale': 'F32 []' });
    expect(shapes('fp8-ct-tensor', 'original')).toMatchObject({ 'experts.1.up_proj.weight_scale': 'F32 [1]', 'experts.1.up_proj.input_scale': 'F32 [1]' });
    const channel = shapes('fp8-ct-channel', 'original');
    expect(channel).toMatchObject({ 'experts.1.up_proj.weight_scale': 'F32 [16, 1]', 'experts.1.down_proj.weight_scale': 'F32 [32, 1]' });
    expect(Object.keys(channel).some((k) => k.endsWith('input_scale'))).toBe(false);
    expect(shapes('fp8-ct-channel', 'fused')).toMatchObject({ 'experts.gate_up_proj_weight_scale': 'F32 [2, 32, 1]', 'experts.down_proj_weight_scale': 'F32 [2, 32, 1]' });
    // A quantized shared expert under its module's own names, as DeepSeek-V3's FP8 checkpoints store it.
    const ds = configOf({ modelType: 'deepseek_v3', experts: 2, hidden: 256, intermediate: 128, sharedIntermediate: 256, topK: 1, layers: 1 }, quantizationConfig(QUANT_DTYPES['fp8-shared']));
    const scheme = QUANT_DTYPES['fp8-shared'];
    const stored = storedTensors({ config: ds, layout: 'original', canonical: randomQuantizedCanonical(moeLayoutsOf(ds, scheme).dims, scheme, seed), scheme });
    const at = (k: string) => `${stored.get(`model.layers.0.mlp.shared_experts.${k}`)?.dtype} [${stored.get(`model.layers.0.mlp.shared_experts.${k}`)?.shape.join(', ')}]`;
    expect(['gate_proj.weight', 'gate_proj.weight_scale_inv', 'down_proj.weight', 'down_proj.weight_scale_inv'].map(at)).toEqual(['F8_E4M3 [256, 256]', 'F32 [2, 2]', 'F8_E4M3 [256, 256]', 'F32 [2, 2]']);
  });

  it('NVFP4 refuses sizes off 16 and TP splitting a 16-element block of w2; AWQ refuses gpt_oss\'s interleaved gate/up', async () => {
    const nv = quantizationConfig(QUANT_DTYPES.nvfp4);
    expect(() => moeLayoutsOf(configOf({ modelType: 'qwen3_moe', experts: 2, hidden: 24, intermediate: 16, topK: 1, layers: 1 }, nv))).toThrow(ShapeMismatch);
    expect(() => moeLayoutsOf(configOf({ modelType: 'gpt_oss', experts: 2, hidden: 64, intermediate: 64, topK: 1, layers: 1 }, quantizationConfig(QUANT_DTYPES['int4-awq-g32'])))).toThrow(/interleaves/);
    const config = configOf({ modelType: 'qwen3_moe', experts: 2, hidden: 16, intermediate: 32, topK: 1, layers: 1 }, nv);
    const { dims, scheme } = moeLayoutsOf(config);
    const dir = fresh();
    await writeMoeCheckpoint(dir, { config, layout: 'fused', canonical: randomQuantizedCanonical(dims, scheme!, seed) });
    await expect(loadCanonical(dir, { tpSize: 4, tpRank: 1, epSize: 1, epRank: 0, epPlacement: 'linear' })).rejects.toThrow(InvalidParallelRequest);
  });

  it('NVFP4 in the transposed and interleaved families is ModelOpt\'s BMM export; shared global scales are found by shape and must agree', async () => {
    const sizes: ModelSizes = { modelType: 'llama4_text', experts: 2, hidden: 32, intermediate: 16, sharedIntermediate: 16, topK: 1, layers: 1 };
    const config = configOf(sizes, quantizationConfig(QUANT_DTYPES.nvfp4));
    const scheme = QUANT_DTYPES['nvfp4-tensor'];
    const { dims } = moeLayoutsOf(config, scheme);
    const canonical = randomQuantizedCanonical(dims, scheme, seed);
    const stored = storedTensors({ config, layout: 'original', canonical, scheme });
    const shape = (k: string) => `${stored.get(`model.layers.0.feed_forward.experts.${k}`)!.dtype} [${stored.get(`model.layers.0.feed_forward.experts.${k}`)!.shape.join(', ')}]`;
    // modelopt unified_export_hf.py: packed and block-scaled transposed, [E, in/2, out] and [E, in/16, out]; one weight_scale_2 per tensor.
    expect(['gate_up_proj', 'gate_up_proj_weight_scale', 'gate_up_proj_weight_scale_2', 'gate_up_proj_input_scale', 'down_proj', 'down_proj_weight_scale', 'down_proj_weight_scale_2'].map(shape)).toEqual([
      'U8 [2, 16, 32]', 'F8_E4M3 [2, 2, 32]', 'F32 []', 'F32 []', 'U8 [2, 8, 32]', 'F8_E4M3 [2, 1, 32]', 'F32 []',
    ]);
    // The loader finds the variant by shape and gives every expert and half the one value.
    const dir = fresh();
    await writeMoeCheckpoint(dir, { config, layout: 'original', canonical, scheme });
    const loaded = await loadCanonical(dir, WHOLE);
    assertBitIdentical(canonical, loaded);
    const s2 = new Float32Array(loaded.get('layers.0.experts.w13_scale_2')!.bytes.slice().buffer);
    expect(new Set(s2).size).toBe(1);
    // Canonical values that one stored value cannot hold are refused by the writer, not averaged or dropped.
    const merged = QUANT_DTYPES['nvfp4-merged'];
    const q3 = configOf({ modelType: 'qwen3_moe', experts: 2, hidden: 32, intermediate: 16, topK: 1, layers: 1 }, quantizationConfig(QUANT_DTYPES.nvfp4));
    const perProjection = randomQuantizedCanonical(moeLayoutsOf(q3).dims, QUANT_DTYPES.nvfp4, seed);
    expect(() => storedTensors({ config: q3, layout: 'fused', canonical: perProjection, scheme: merged })).toThrow(WriterInputError);
    expect(storedTensors({ config: q3, layout: 'fused', canonical: randomQuantizedCanonical(moeLayoutsOf(q3).dims, merged, seed), scheme: merged }).get('model.layers.0.mlp.experts.gate_up_proj_weight_scale_2')!.shape).toEqual([2]);
    // Per expert, gate and up keep one tensor each: the merged variant stores what the per-projection one does.
    expect(() => storedTensors({ config: q3, layout: 'original', canonical: perProjection, scheme: merged })).not.toThrow();
    expect(() => moeLayoutsOf(q3, QUANT_DTYPES['int4-ct-g32'])).toThrow(QuantConfigError);
  });

  it('static FP8 refuses a missing input_scale where the config declares static activations', async () => {
    const config = configOf({ modelType: 'qwen3_moe', experts: 2, hidden: 8, intermediate: 4, topK: 1, layers: 1 }, quantizationConfig(QUANT_DTYPES['fp8-tensor']));
    const { dims, scheme } = moeLayoutsOf(config);
    const stored = storedTensors({ config, layout: 'original', canonical: randomQuantizedCanonical(dims, scheme!, seed) });
    stored.delete('model.layers.0.mlp.experts.1.up_proj.input_scale');
    const dir = fresh();
    await writeCheckpointDir(dir, config.raw, [...stored]);
    await expect(loadCanonical(dir, WHOLE)).rejects.toThrow(/input_scale/);
    await expect(loadCanonical(dir, WHOLE)).rejects.toThrow(MissingTensor);
  });

  it('NVFP4 refuses an expert without its weight_scale_2 or input_scale, naming it (issue 15: never loaded)', async () => {
    const config = configOf({ modelType: 'qwen3_moe', experts: 2, hidden: 16, intermediate: 16, topK: 1, layers: 1 }, quantizationConfig(QUANT_DTYPES.nvfp4));
    const { dims, scheme } = moeLayoutsOf(config);
    const stored = storedTensors({ config, layout: 'original', canonical: randomQuantizedCanonical(dims, scheme!, seed) });
    for (const suffix of ['.weight_scale_2', '.input_scale']) {
      const name = [...stored.keys()].filter((k) => k.includes('.experts.1.') && k.endsWith(suffix)).sort()[0]!;
      const without = new Map(stored);
      without.delete(name);
      const dir = fresh();
      await writeCheckpointDir(dir, config.raw, [...without]);
      const e = await loadCanonical(dir, WHOLE).then(() => undefined, (x: unknown) => x);
      expect(e, name).toBeInstanceOf(MissingTensor);
      expect(String((e as Error).message), name).toContain(name);
    }
  });

  it('refuses a router stored quantized, or with quantization tensors beside it (QuantizedRouter)', async () => {
    const config = configOf({ modelType: 'qwen3_moe', experts: 2, hidden: 16, intermediate: 16, topK: 1, layers: 1 }, quantizationConfig(QUANT_DTYPES.nvfp4));
    const { dims, scheme } = moeLayoutsOf(config);
    const stored = storedTensors({ config, layout: 'fused', canonical: randomQuantizedCanonical(dims, scheme!, seed) });
    const router = 'model.layers.0.mlp.gate.weight';
    const r = stored.get(router)!;
    const f8 = new Map(stored).set(router, { dtype: 'F8_E4M3', shape: r.shape, bytes: new Uint8Array(r.bytes.length / 2) });
    const scaled = new Map(stored).set('model.layers.0.mlp.gate.weight_scale', { dtype: 'F32', shape: [], bytes: new Uint8Array(4) });
    for (const tensors of [f8, scaled]) {
      const dir = fresh();
      await writeCheckpointDir(dir, config.raw, [...tensors]);
      await expect(loadCanonical(dir, WHOLE)).rejects.toThrow(QuantizedRouter);
    }
  });
});
