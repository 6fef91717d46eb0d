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
import { loadCanonical } from '../loader/load.js';
import { WHOLE, type ParallelRequest } from '../tensor.js';
import { buildConfig, type ModelSizes } from '../writer/config.js';
import { storedTensors, writeMoeCheckpoint } from '../writer/write-checkpoint.js';
import { dequantizeCanonical } from './dequantize.js';
import { QuantConfigError, QuantizedRouter } from './errors.js';
import { moeLayoutsOf } from './layout.js';
import { randomQuantizedCanonical } from './random.js';
import { QUANT_DTYPES } from './formats/index.js';
import { quantizationConfig } from './scheme.js';

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
const CASES: Array<{ sizes: ModelSizes; quant: Record<string, unknown>; tp: number[] }> = [
  { sizes: { modelType: 'qwen3_moe', experts: 5, hidden: 20, intermediate: 12, topK: 2, layers: 2 }, quant: FP8, tp: [2, 3] },
  { sizes: { modelType: 'mixtral', experts: 3, hidden: 20, intermediate: 12, topK: 2, layers: 1 }, quant: FP8, tp: [3] },
  { sizes: { modelType: 'deepseek_v3', experts: 4, hidden: 20, intermediate: 12, sharedIntermediate: 24, topK: 2, layers: 1 }, quant: FP8, tp: [2] },
  { sizes: { modelType: 'gpt_oss', experts: 3, hidden: 64, intermediate: 64, topK: 2, layers: 2 }, quant: { quant_method: 'mxfp4' }, tp: [2] },
  // NVFP4: per-expert (B, A), fused v5, and granitemoe's fused `input_linear.weight` (F); TP in whole 16-element blocks.
  { sizes: { modelType: 'qwen3_moe', experts: 5, hidden: 32, intermediate: 32, topK: 2, layers: 2 }, quant: quantizationConfig(QUANT_DTYPES.nvfp4), tp: [2] },
  { sizes: { modelType: 'mixtral', experts: 3, hidden: 16, intermediate: 48, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES.nvfp4), tp: [3] },
  { sizes: { modelType: 'granitemoe', experts: 3, hidden: 16, intermediate: 32, topK: 2, layers: 1 }, quant: quantizationConfig(QUANT_DTYPES.nvfp4), tp: [2] },
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
  // Static FP8, every producer's form; no TP constraint.
  ...(['fp8-tensor', 'fp8-modelopt', 'fp8-ct-tensor', 'fp8-ct-channel'] as const).map((d) => ({
    sizes: { modelType: 'qwen3_moe', experts: 5, hidden: 20, intermediate: 12, topK: 2, layers: 1 },
    quant: quantizationConfig(QUANT_DTYPES[d]),
    tp: [2, 3],
  })),
];

describe('quantized checkpoints through the writer and the reference loader', () => {
  for (const { sizes, quant, tp } of CASES) {
    it(`${sizes.modelType} ${String(quant.quant_method)} ${String(quant.quant_algo ?? quant.format ?? '')}: both layouts load back whole and per TP rank, identically`, async () => {
      const config = configOf(sizes, quant);
      const { dims, scheme } = moeLayoutsOf(config);
      const canonical = randomQuantizedCanonical(dims, scheme!, seed);
      const dirs = { original: fresh(), fused: fresh() };
      for (const layout of ['original', 'fused'] as const) {
        await writeMoeCheckpoint(dirs[layout], { config, layout, canonical });
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

  it('refuses what the formats cannot hold: MXFP4 TP splitting blocks, MXFP4 outside gpt_oss or off 32, FP8 shared-expert scales', async () => {
    const mx = configOf({ modelType: 'gpt_oss', experts: 2, hidden: 64, intermediate: 64, topK: 1, layers: 1 }, { quant_method: 'mxfp4' });
    const dir = fresh();
    const { dims, scheme } = moeLayoutsOf(mx);
    await writeMoeCheckpoint(dir, { config: mx, layout: 'original', canonical: randomQuantizedCanonical(dims, scheme!, seed) });
    await expect(loadCanonical(dir, { tpSize: 4, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' })).rejects.toThrow(InvalidParallelRequest);
    expect(() => moeLayoutsOf(configOf({ modelType: 'mixtral', experts: 2, hidden: 64, intermediate: 64, topK: 1, layers: 1 }, { quant_method: 'mxfp4' }))).toThrow(QuantConfigError);
    expect(() => moeLayoutsOf(configOf({ modelType: 'gpt_oss', experts: 2, hidden: 48, intermediate: 64, topK: 1, layers: 1 }, { quant_method: 'mxfp4' }))).toThrow(ShapeMismatch);
    // A DeepSeek checkpoint whose shared expert carries FP8 scales: refused, not read unscaled.
    const ds = configOf({ modelType: 'deepseek_v3', experts: 2, hidden: 20, intermediate: 12, sharedIntermediate: 12, topK: 1, layers: 1 }, FP8);
    const dsDims = moeLayoutsOf(ds);
    const dsDir = fresh();
    const extra = new Map([['model.layers.0.mlp.shared_experts.gate_proj.weight_scale_inv', { dtype: 'F32' as const, shape: [3, 4], bytes: new Uint8Array(48) }]]);
    await writeMoeCheckpoint(dsDir, { config: ds, layout: 'original', canonical: randomQuantizedCanonical(dsDims.dims, dsDims.scheme!, seed), extra });
    await expect(loadCanonical(dsDir, WHOLE)).rejects.toThrow(UnrecognisedTensor);
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
  });

  it('NVFP4 refuses sizes off 16, TP splitting a 16-element block of w2, and the transposed llama4 form', async () => {
    const nv = quantizationConfig(QUANT_DTYPES.nvfp4);
    expect(() => moeLayoutsOf(configOf({ modelType: 'qwen3_moe', experts: 2, hidden: 24, intermediate: 16, topK: 1, layers: 1 }, nv))).toThrow(ShapeMismatch);
    expect(() => moeLayoutsOf(configOf({ modelType: 'llama4_text', experts: 2, hidden: 16, intermediate: 16, sharedIntermediate: 16, topK: 1, layers: 1 }, nv))).toThrow(QuantConfigError);
    const config = configOf({ modelType: 'qwen3_moe', experts: 2, hidden: 16, intermediate: 32, topK: 1, layers: 1 }, nv);
    const { dims, scheme } = moeLayoutsOf(config);
    const dir = fresh();
    await writeMoeCheckpoint(dir, { config, layout: 'fused', canonical: randomQuantizedCanonical(dims, scheme!, seed) });
    await expect(loadCanonical(dir, { tpSize: 4, tpRank: 1, epSize: 1, epRank: 0, epPlacement: 'linear' })).rejects.toThrow(InvalidParallelRequest);
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
