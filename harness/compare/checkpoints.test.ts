// Checkpoint comparison on the golden fixtures: both layouts of a model are the same for
// every split; a sign bit flipped in one stored element is found at the canonical element
// it lands in, on the right rank, and traced back to the stored tensor on both sides; model
// and config differences, dtype differences and refusals are reported as such.
import { cpSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidParallelRequest } from '../canonical/errors.js';
import { loadCanonical } from '../loader/load.js';
import { SafetensorsFile } from '../safetensors/read.js';
import { writeSafetensors } from '../safetensors/write.js';
import type { EpPlacement } from '../tensor.js';
import { CheckpointRefused, compareCheckpoints, describeCheckpointDifference, type CompareOptions } from './checkpoints.js';

const GOLDEN = join(import.meta.dirname, '../../golden/hf');
const scratch = mkdtempSync(join(tmpdir(), 'moe-compare-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const split = (tpSize: number, epSize: number, epPlacement: EpPlacement = 'linear'): CompareOptions => ({ tpSize, epSize, epPlacement });

/** Tensors and bytes of every rank of a split, counted from in-memory loads. */
async function totals(dir: string, o: CompareOptions): Promise<{ tensors: number; bytes: number }> {
  let [tensors, bytes] = [0, 0];
  for (let tpRank = 0; tpRank < o.tpSize; tpRank++) {
    for (let epRank = 0; epRank < o.epSize; epRank++) {
      const c = await loadCanonical(dir, { tpSize: o.tpSize, tpRank, epSize: o.epSize, epRank, epPlacement: o.epPlacement });
      tensors += c.size;
      for (const t of c.values()) bytes += t.bytes.length;
    }
  }
  return { tensors, bytes };
}

describe('the two layouts of a golden model', () => {
  it.each([
    ['mixtral-bf16', split(2, 2)],
    ['gpt_oss-f32', split(4, 3, 'round_robin')],
    ['llama4_text-bf16', split(2, 1)],
    ['deepseek_v3-f32', split(1, 8)],
    ['dbrx-bf16', split(5, 2, 'round_robin')],
    ['qwen2_moe-bf16', split(2, 4)],
  ] as const)('%s: the same canonical tensors, every rank of the split', async (fixture, o) => {
    const original = join(GOLDEN, fixture, 'original');
    const r = await compareCheckpoints(original, join(GOLDEN, fixture, 'fused'), { ...o, maxWindow: 64 });
    expect(r).toMatchObject({ same: true, differences: [], unreported: 0, ranks: o.tpSize * o.epSize, ...(await totals(original, o)) });
  });
});

const H = 48;
const I = 20;
const upKey = (layer: number, e: number) => `model.layers.${layer}.block_sparse_moe.experts.${e}.w3.weight`;
const downKey = (layer: number, e: number) => `model.layers.${layer}.block_sparse_moe.experts.${e}.w2.weight`;

/** A copy of mixtral-bf16/original with the sign bit of element (row, col) of each named stored tensor flipped; returns the original two bytes of each. */
async function flipped(name: string, targets: Array<{ key: string; row: number; col: number; cols: number }>): Promise<{ dir: string; bytes: Uint8Array[] }> {
  const dir = join(scratch, name);
  cpSync(join(GOLDEN, 'mixtral-bf16', 'original'), dir, { recursive: true });
  const path = join(dir, 'model.safetensors');
  const file = await SafetensorsFile.open(path);
  const offsets = targets.map((t) => file.dataStart + file.info(t.key).dataOffsets[0] + (t.row * t.cols + t.col) * 2);
  await file.close();
  const fd = openSync(path, 'r+');
  try {
    return {
      dir,
      bytes: offsets.map((at) => {
        const two = new Uint8Array(2);
        readSync(fd, two, 0, 2, at);
        writeSync(fd, Uint8Array.of(two[1]! ^ 0x80), 0, 1, at + 1);
        return two;
      }),
    };
  } finally {
    closeSync(fd);
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bf16 = (b: Uint8Array) => new DataView(Uint8Array.of(0, 0, b[0]!, b[1]!).buffer).getFloat32(0, true);

describe('a flipped sign bit in one expert', () => {
  // Expert 5, layer 1, up projection, row 13 column 11: TP rank 1 of 2 holds up rows 10..19,
  // EP rank 1 of 2 (linear) holds experts 4..7, so expert 5 is its slot 1.
  const target = { key: upKey(1, 5), row: 13, col: 11, cols: H };
  const pristine = join(GOLDEN, 'mixtral-bf16', 'original');

  it('is named by rank, tensor and element, with bytes, values and both sources', async () => {
    const { dir, bytes: [before] } = await flipped('one-flip', [target]);
    const after = Uint8Array.of(before![0]!, before![1]! ^ 0x80);
    for (const maxWindow of [undefined, 64]) {
      const r = await compareCheckpoints(join(GOLDEN, 'mixtral-bf16', 'fused'), dir, { ...split(2, 2), ...(maxWindow ? { maxWindow } : {}) });
      expect(r.same).toBe(false);
      expect(r.differences).toHaveLength(1);
      const Ir = I / 2;
      expect(r.differences[0]).toEqual({
        kind: 'tensor',
        rank: { tpRank: 1, tpSize: 2, epRank: 1, epSize: 2 },
        difference: {
          kind: 'bytes', tensor: 'layers.1.experts.w13', index: (1 * 2 * Ir + Ir + (13 - Ir)) * H + 11,
          expectedBytes: hex(before!), foundBytes: hex(after), expectedValue: bf16(before!), foundValue: bf16(after), differing: 1,
          expectedBits: hex(before!.slice().reverse()), foundBits: hex(after.slice().reverse()),
          position: [1, Ir + (13 - Ir), 11], where: `slot 1, up row ${13 - Ir}, column 11`,
        },
        expectedSource: { tensor: 'model.layers.1.mlp.experts.gate_up_proj', file: join(GOLDEN, 'mixtral-bf16', 'fused', 'model.safetensors'), index: [5, I + 13, 11] },
        foundSource: { tensor: upKey(1, 5), file: join(dir, 'model.safetensors'), index: [13, 11] },
      });
      // Ranks before the one holding it were compared in full; the comparison stopped there.
      expect(r.ranks).toBe(4);
    }
  });

  it('is found on the whole model too, and the message names everything', async () => {
    const { dir } = await flipped('one-flip-whole', [target]);
    const r = await compareCheckpoints(pristine, dir, split(1, 1));
    expect(r.differences[0]).toMatchObject({ kind: 'tensor', difference: { tensor: 'layers.1.experts.w13', index: (5 * 2 * I + I + 13) * H + 11 } });
    const text = describeCheckpointDifference(r.differences[0]!);
    expect(text.split('\n')[0]).toMatch(new RegExp(`^TP rank 0/1, EP rank 0/1: tensor layers\\.1\\.experts\\.w13 differs at slot 5, up row 13, column 11: found 0x[0-9a-f]{4} \\(-?[\\d.e-]+\\), expected 0x[0-9a-f]{4} \\(-?[\\d.e-]+\\); 1 element\\(s\\) differ$`));
    expect(text).toContain(`A: ${upKey(1, 5)}[13, 11] in ${join(pristine, 'model.safetensors')}`);
    expect(text).toContain(`B: ${upKey(1, 5)}[13, 11] in ${join(dir, 'model.safetensors')}`);
  });

  it('stops at the first differing tensor, or with all reports every one, bounded', async () => {
    // Layer 0's w2 comes before layer 1's w13 in the plan; both differ on every rank of TP 1.
    const { dir } = await flipped('two-flips', [target, { key: downKey(0, 2), row: 40, col: 3, cols: I }, { key: downKey(0, 2), row: 41, col: 3, cols: I }]);
    const first = await compareCheckpoints(pristine, dir, split(1, 1));
    expect(first.differences.map((d) => d.kind === 'tensor' && d.difference)).toEqual([expect.objectContaining({ tensor: 'layers.0.experts.w2', index: (2 * H + 40) * I + 3, differing: 2 })]);
    const all = await compareCheckpoints(pristine, dir, { ...split(1, 1), all: true });
    expect(all.differences.map((d) => d.kind === 'tensor' && [d.difference.tensor, d.difference.kind === 'bytes' && d.difference.differing])).toEqual([
      ['layers.0.experts.w2', 2],
      ['layers.1.experts.w13', 1],
    ]);
    expect(all.tensors).toBe((await totals(pristine, split(1, 1))).tensors);
    const bounded = await compareCheckpoints(pristine, dir, { ...split(1, 1), all: true, maxReported: 1 });
    expect(bounded).toMatchObject({ same: false, unreported: 1 });
    expect(bounded.differences).toHaveLength(1);
  });
});

describe('checkpoints that are not the same model', () => {
  it('reports a different model type before any tensor', async () => {
    const r = await compareCheckpoints(join(GOLDEN, 'mixtral-bf16', 'original'), join(GOLDEN, 'olmoe-bf16', 'original'), split(1, 1));
    expect(r).toMatchObject({ same: false, ranks: 0, tensors: 0, differences: [{ kind: 'model', field: 'model_type', expected: 'mixtral', found: 'olmoe' }] });
    expect(describeCheckpointDifference(r.differences[0]!)).toBe('different model types: "olmoe" in B, "mixtral" in A');
  });
  it('reports a different config-derived size', async () => {
    const dir = join(scratch, 'top3');
    cpSync(join(GOLDEN, 'mixtral-bf16', 'fused'), dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, num_experts_per_tok: 3 }));
    const r = await compareCheckpoints(join(GOLDEN, 'mixtral-bf16', 'original'), dir, split(2, 1));
    expect(r.differences).toEqual([{ kind: 'model', field: 'topK', expected: 2, found: 3 }]);
    expect(describeCheckpointDifference(r.differences[0]!)).toBe('different config-derived topK: 3 in B, 2 in A');
  });
  it('reports a different dtype as a header difference of the first tensor', async () => {
    const r = await compareCheckpoints(join(GOLDEN, 'qwen3_moe-bf16', 'original'), join(GOLDEN, 'qwen3_moe-f32', 'fused'), { ...split(1, 1), all: true, maxReported: 3 });
    expect(r.differences[0]).toMatchObject({ kind: 'tensor', difference: { kind: 'dtype', tensor: 'layers.0.experts.w13', expected: 'BF16', found: 'F32' } });
    expect(r.differences).toHaveLength(3);
    expect(r.unreported).toBeGreaterThan(0);
  });
});

describe('refusals', () => {
  it('a checkpoint the loader refuses is named with its side and reason', async () => {
    const mixed = join(scratch, 'mixed');
    cpSync(join(GOLDEN, 'mixtral-bf16', 'original'), mixed, { recursive: true });
    // Layer 0 also in the fused form, in a second file: per-expert and fused tensors of one layer.
    const fused = await SafetensorsFile.open(join(GOLDEN, 'mixtral-bf16', 'fused', 'model.safetensors'));
    const gateUp = 'model.layers.0.mlp.experts.gate_up_proj';
    await writeSafetensors(join(mixed, 'fused.safetensors'), [[gateUp, await fused.readTensor(gateUp)]]);
    await fused.close();
    const good = join(GOLDEN, 'mixtral-bf16', 'fused');
    await expect(compareCheckpoints(good, mixed, split(1, 1))).rejects.toThrow(CheckpointRefused);
    await expect(compareCheckpoints(good, mixed, split(1, 1))).rejects.toThrow(/^checkpoint B \(\S+mixed\) cannot be loaded: MixedLayout: /);
    await expect(compareCheckpoints(join(scratch, 'absent'), good, split(1, 1))).rejects.toThrow(/^checkpoint A \(\S+absent\) cannot be loaded: ConfigError: [^\n]*config.json\]$/);
  });
  it('a split the model cannot take is refused as a request, for both sides', async () => {
    const m = join(GOLDEN, 'mixtral-bf16');
    await expect(compareCheckpoints(join(m, 'original'), join(m, 'fused'), split(3, 1))).rejects.toThrow(InvalidParallelRequest);
    await expect(compareCheckpoints(join(m, 'original'), join(m, 'fused'), split(1, 9))).rejects.toThrow(InvalidParallelRequest);
  });
});
