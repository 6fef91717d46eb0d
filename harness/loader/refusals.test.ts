// Every refusal of the reference loader, each on a hand-made broken checkpoint, and the
// numeric expert order (12 experts spread over files in string order).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelConfig } from '../checkpoint/config.js';
import { CheckpointDir } from '../checkpoint/directory.js';
import { writeCheckpointDir } from '../checkpoint/write.js';
import { entryFor, type LayoutName } from '../layouts/registry.js';
import { DtypeMismatch, ExpertOutOfRange, LayoutConfigError, MissingTensor, MixedLayout, RefusedModelType, ShapeMismatch, UnknownModelType, UnrecognisedTensor } from '../layouts/errors.js';
import { WHOLE, type ParallelRequest, type Tensor } from '../tensor.js';
import { buildConfig, type ModelSizes } from '../writer/config.js';
import { randomCanonical } from '../canonical/random.js';
import { storedTensors } from '../writer/write-checkpoint.js';
import { InvalidParallelRequest } from '../canonical/errors.js';
import { loadCanonical } from './load.js';

const scratch = mkdtempSync(join(tmpdir(), 'moe-refusals-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const mixtral: ModelSizes = { modelType: 'mixtral', experts: 8, hidden: 6, intermediate: 4, topK: 2, layers: 2 };

/** The MoE tensors of a valid random checkpoint, to be broken by the caller. */
function tensorsOf(sizes: ModelSizes, layout: LayoutName, raw: Record<string, unknown> = buildConfig(sizes, 'float32')) {
  const config = new ModelConfig(raw);
  const canonical = randomCanonical(entryFor(config.modelType).dims(config), 'F32', 1);
  return { raw, tensors: storedTensors({ config, layout, canonical }) };
}

let n = 0;
async function write(raw: Record<string, unknown>, tensors: Map<string, Tensor>): Promise<string> {
  const dir = join(scratch, `c${n++}`);
  await writeCheckpointDir(dir, raw, tensors);
  return dir;
}

const f32 = (shape: number[]): Tensor => ({ dtype: 'F32', shape, bytes: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 4) });
const prefix = 'model.layers.1.block_sparse_moe';

describe('the reference loader refuses', () => {
  it('a missing expert projection, naming layer and tensor', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'original');
    tensors.delete(`${prefix}.experts.3.w3.weight`);
    const err = await loadCanonical(await write(raw, tensors), WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingTensor);
    expect(err).toMatchObject({ layer: 1, tensor: `${prefix}.experts.3.w3.weight` });
  });

  it('a duplicated expert: per-expert and fused forms both present', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'original');
    tensors.set('model.layers.1.mlp.experts.gate_up_proj', f32([8, 8, 6]));
    await expect(loadCanonical(await write(raw, tensors), WHOLE)).rejects.toThrow(MixedLayout);
  });

  it('a layer stored half fused and half per expert', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'fused');
    tensors.delete('model.layers.0.mlp.experts.down_proj');
    for (let e = 0; e < 8; e++) tensors.set(`model.layers.0.block_sparse_moe.experts.${e}.w2.weight`, f32([6, 4]));
    const err = await loadCanonical(await write(raw, tensors), WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MixedLayout);
    expect(err).toMatchObject({ layer: 0 });
  });

  it('an expert id >= E', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'original');
    tensors.set(`${prefix}.experts.8.w1.weight`, f32([4, 6]));
    const err = await loadCanonical(await write(raw, tensors), WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExpertOutOfRange);
    expect(err).toMatchObject({ layer: 1, found: 8 });
  });

  it('a shape that does not fit config.json (transposed down projection)', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'original');
    tensors.set(`${prefix}.experts.2.w2.weight`, f32([4, 6]));
    const err = await loadCanonical(await write(raw, tensors), WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeMismatch);
    expect(err).toMatchObject({ expected: [6, 4], found: [4, 6] });
  });

  it('a fused tensor whose shape is the transposed layout ([E, H, 2I] where [E, 2I, H] is expected)', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'fused');
    tensors.set('model.layers.0.mlp.experts.gate_up_proj', f32([8, 6, 8]));
    await expect(loadCanonical(await write(raw, tensors), WHOLE)).rejects.toThrow(ShapeMismatch);
  });

  it('MoE tensors under names no layout recognises, rather than ignoring them', async () => {
    for (const extra of [`${prefix}.experts.0.w1.weight_scale`, `${prefix}.experts.07.w1.weight`, `${prefix}.experts.0.w4.weight`, 'model.layers.0.mlp.experts.gate_up_proj_bias']) {
      const { raw, tensors } = tensorsOf(mixtral, extra.includes('.mlp.') ? 'fused' : 'original');
      tensors.set(extra, f32([4, 6]));
      const err = await loadCanonical(await write(raw, tensors), WHOLE).catch((e: unknown) => e);
      expect(err, extra).toBeInstanceOf(UnrecognisedTensor);
      expect(err).toMatchObject({ tensor: extra });
    }
  });

  it('expert tensors in a layer config.json makes dense', async () => {
    const sizes: ModelSizes = { modelType: 'qwen2_moe', experts: 4, hidden: 6, intermediate: 4, sharedIntermediate: 4, topK: 2, layers: 2 };
    const { raw, tensors } = tensorsOf(sizes, 'original');
    const denseRaw = { ...raw, mlp_only_layers: [1] };
    const kept = new Map([...tensors].filter(([k]) => !k.startsWith('model.layers.1.')));
    kept.set('model.layers.1.mlp.experts.0.gate_proj.weight', f32([4, 6]));
    const err = await loadCanonical(await write(denseRaw, kept), WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecognisedTensor);
    expect(err).toMatchObject({ layer: 1 });
  });

  it('gate and up of one expert in different dtypes', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'original');
    tensors.set(`${prefix}.experts.5.w3.weight`, { dtype: 'BF16', shape: [4, 6], bytes: new Uint8Array(48) });
    await expect(loadCanonical(await write(raw, tensors), WHOLE)).rejects.toThrow(DtypeMismatch);
  });

  it('an unknown model type', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'original');
    await expect(loadCanonical(await write({ ...raw, model_type: 'mixtral_v9' }, tensors), WHOLE)).rejects.toThrow(UnknownModelType);
  });

  it('a model type the canonical form cannot hold (ernie4_5_vl_moe), with the reason', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'original');
    await expect(loadCanonical(await write({ ...raw, model_type: 'ernie4_5_vl_moe' }, tensors), WHOLE)).rejects.toThrow(RefusedModelType);
    await expect(loadCanonical(await write({ ...raw, model_type: 'ernie4_5_vl_moe' }, tensors), WHOLE)).rejects.toThrow(/two routed expert sets/);
  });

  it('I % T != 0, Is % T != 0, P > E and ranks out of range', async () => {
    const sizes: ModelSizes = { modelType: 'qwen2_moe', experts: 4, hidden: 6, intermediate: 4, sharedIntermediate: 6, topK: 2, layers: 1 };
    const { raw, tensors } = tensorsOf(sizes, 'fused');
    const dir = await write(raw, tensors);
    const bad: Array<Partial<ParallelRequest>> = [{ tpSize: 3 }, { tpSize: 4 }, { epSize: 5 }, { tpSize: 2, tpRank: 2 }, { epSize: 2, epRank: 2 }];
    for (const r of bad) await expect(loadCanonical(dir, { ...WHOLE, ...r }), JSON.stringify(r)).rejects.toThrow(InvalidParallelRequest);
    await expect(loadCanonical(dir, { ...WHOLE, tpSize: 2, tpRank: 1, epSize: 4, epRank: 3 })).resolves.toBeInstanceOf(Map);
  });
});

describe('expert order', () => {
  it('is numeric: 12 experts whose tensors sit in files in string order load 0..11, expert 10 after 9', async () => {
    const sizes = { ...mixtral, experts: 12, layers: 1 };
    const { raw, tensors } = tensorsOf(sizes, 'original');
    const id = (k: string) => /experts\.(\d+)\./.exec(k)?.[1];
    // Files follow the string order of expert ids: "0", "1", "10", "11", "2", ...
    const byString = [...new Set([...tensors.keys()].map(id).filter((x): x is string => x !== undefined))].sort();
    const assignment = new Map([...tensors.keys()].map((k) => [k, id(k) === undefined ? 0 : byString.indexOf(id(k)!)]));
    const dir = join(scratch, 'order');
    await writeCheckpointDir(dir, raw, [...tensors].reverse(), { assignment, files: 12 });
    const checkpoint = await CheckpointDir.open(dir);
    const canonical = await loadCanonical(dir, WHOLE);
    const ids = Array.from(new Int32Array(canonical.get('layers.0.experts.ids')!.bytes.slice().buffer));
    expect(ids).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // Slot 10 holds expert 10's own gate rows, read straight from its file.
    const gate10 = await checkpoint.read('model.layers.0.block_sparse_moe.experts.10.w1.weight');
    const w13 = canonical.get('layers.0.experts.w13')!;
    const slot = w13.bytes.length / 12;
    expect(Buffer.from(w13.bytes.subarray(10 * slot, 10 * slot + gate10.bytes.length)).equals(Buffer.from(gate10.bytes))).toBe(true);
    await checkpoint.close();
  });
});

describe('hostile sizes in config.json', () => {
  it('a huge expert count is refused at the first tensor that disagrees, without enumerating experts', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'original');
    const err = await loadCanonical(await write({ ...raw, num_local_experts: 2 ** 40 }, tensors), WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeMismatch);
    expect(err).toMatchObject({ tensor: 'model.layers.0.block_sparse_moe.gate.weight' });
    // Without the router to disagree, the first absent expert stops it.
    tensors.delete('model.layers.0.block_sparse_moe.gate.weight');
    const missing = await loadCanonical(await write({ ...raw, num_local_experts: 2 ** 40 }, tensors), WHOLE).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MissingTensor);
    expect(missing).toMatchObject({ tensor: 'model.layers.0.block_sparse_moe.gate.weight' });
  });
  it('a huge layer count is refused before any layer list is built', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'fused');
    await expect(loadCanonical(await write({ ...raw, num_hidden_layers: 2 ** 50 }, tensors), WHOLE)).rejects.toThrow(LayoutConfigError);
  });
  it('a huge hidden size is a shape mismatch, not an allocation', async () => {
    const { raw, tensors } = tensorsOf(mixtral, 'fused');
    await expect(loadCanonical(await write({ ...raw, hidden_size: 2 ** 45 }, tensors), WHOLE)).rejects.toThrow(ShapeMismatch);
  });
});
