// A checkpoint whose fused expert tensors are over 4 GiB each (DeepSeek-V3's fp8
// gate_up_proj of one layer is 7.5 GB), as a sparse file: a TP/EP rank cut from the far
// end (offsets past 2^32) loads bit-exact, streaming reads only what the rank holds, and
// materializing the whole model in memory is refused with a typed error (it was an
// untyped RangeError), since one canonical tensor cannot be one buffer.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelConfig } from '../checkpoint/config.js';
import { CheckpointDir } from '../checkpoint/directory.js';
import { expandLayout } from './detect.js';
import { entryFor } from '../layouts/registry.js';
import { TensorTooLarge } from '../safetensors/errors.js';
import { pattern, writeSparse, type SparseTensor } from '../safetensors/test/sparse.js';
import { buildConfig } from '../writer/config.js';
import { canonicalName } from '../canonical/canonical.js';
import { materialize, planLoad, tensorChunks } from './load.js';

const [E, H, I, TP] = [2, 4096, 132096, 1024];
const per = I / TP; // rows of gate (and of up) that the last TP rank holds
const GATE_UP = 'model.layers.0.mlp.experts.gate_up_proj';
const DOWN = 'model.layers.0.mlp.experts.down_proj';
const gateRows = pattern(per * H * 2, 3);
const upRows = pattern(per * H * 2, 4);
const downCols = Array.from({ length: H }, (_, h) => pattern(per * 2, 100 + h));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'huge-checkpoint-'));
  const raw = buildConfig({ modelType: 'mixtral', experts: E, hidden: H, intermediate: I, topK: 1, layers: 1 }, 'bfloat16');
  const dims = entryFor('mixtral').dims(new ModelConfig(raw));
  const stored = expandLayout(entryFor('mixtral').layouts.fused, 0, dims);
  expect(stored.map((s) => s.key).sort()).toEqual([DOWN, GATE_UP, 'model.layers.0.mlp.gate.weight']);
  const tensors = stored.map((s): [string, SparseTensor] => [s.key, { dtype: 'BF16', shape: s.shape }]);
  // Expert E-1's last `per` gate rows and last `per` up rows; its last `per` down columns.
  const row = H * 2;
  const expert = 2 * I * row;
  const patches: Array<[string, number, Uint8Array]> = [
    [GATE_UP, (E - 1) * expert + (I - per) * row, gateRows],
    [GATE_UP, (E - 1) * expert + (2 * I - per) * row, upRows],
    ...downCols.map((c, h): [string, number, Uint8Array] => [DOWN, (E - 1) * H * I * 2 + (h * I + I - per) * 2, c]),
  ];
  expect(patches[1]![1]).toBeGreaterThan(2 ** 32);
  await writeFile(join(dir, 'config.json'), JSON.stringify(raw));
  await writeSparse(join(dir, 'model.safetensors'), tensors, patches);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fused expert tensors over 4 GiB (sparse file)', () => {
  it('the last TP rank of the last EP rank loads bit-exact from past 2^32', async () => {
    const checkpoint = await CheckpointDir.open(dir);
    try {
      expect(checkpoint.info(GATE_UP).dataOffsets[1] - checkpoint.info(GATE_UP).dataOffsets[0]).toBeGreaterThan(2 ** 32);
      const plan = await planLoad(checkpoint, { tpSize: TP, tpRank: TP - 1, epSize: E, epRank: E - 1, epPlacement: 'linear' });
      const out = await materialize(plan);
      const w13 = out.get(canonicalName(0, 'experts.w13'))!;
      expect(w13.shape).toEqual([1, 2 * per, H]);
      expect(Buffer.from(w13.bytes).equals(Buffer.concat([gateRows, upRows]))).toBe(true);
      const w2 = out.get(canonicalName(0, 'experts.w2'))!;
      expect(w2.shape).toEqual([1, H, per]);
      expect(Buffer.from(w2.bytes).equals(Buffer.concat(downCols))).toBe(true);
    } finally {
      await checkpoint.close();
    }
  });

  it('the whole model in memory: TensorTooLarge before anything is read; streamed, its first chunk comes', async () => {
    const checkpoint = await CheckpointDir.open(dir);
    try {
      const plan = await planLoad(checkpoint, { tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' });
      const e = await materialize(plan).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TensorTooLarge);
      expect((e as TensorTooLarge).tensor).toBe(canonicalName(0, 'experts.w13'));
      const w13 = plan.tensors.find((t) => t.name === canonicalName(0, 'experts.w13'))!;
      expect(w13.byteLength).toBeGreaterThan(2 ** 32);
      const stream = tensorChunks(checkpoint, w13, { maxWindow: 1 << 20 });
      const first = await stream.next();
      expect(first.done).toBe(false);
      expect((first.value as Uint8Array).length).toBeLessThanOrEqual(1 << 20);
      await stream.return(undefined);
    } finally {
      await checkpoint.close();
    }
  });
});
