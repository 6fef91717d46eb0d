// Stored tensors that take part in routing or scaling (gemma4's router input scale, per-expert
// output scales and expert input norm; inkling's global scale) are canonical tensors that keep
// the dtype the checkpoint stores (spec §1 "dtype per tensor"): kept in F32 inside a bf16
// checkpoint, they load as F32, and a loader that narrows them to bf16 differs bit for bit.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstDifference } from '../compare/bits.js';
import { decodeFloats64, encodeFloats } from '../safetensors/codecs.js';
import { parseSafetensors } from '../safetensors/read.js';
import { serializeSafetensors } from '../safetensors/write.js';
import type { Tensor } from '../tensor.js';
import { referenceLoader } from './load.js';

const GOLDEN = join(import.meta.dirname, '../../golden/hf');
const WHOLE = { tpSize: 2, tpRank: 1, epSize: 2, epRank: 0, epPlacement: 'linear' as const };

const cases: Array<[string, string, Record<string, string>]> = [
  ['gemma4_text-bf16', 'model.layers.0.', { 'router.scale': 'router.input_scale', 'router.per_expert_scale': 'router.expert_scale', 'pre_feedforward_layernorm_2.weight': 'expert_input_norm' }],
  ['inkling_text-bf16', 'model.layers.0.mlp.', { 'gate.global_scale': 'router.global_scale' }],
];

describe.each(cases)('%s: routing and scaling tensors keep their stored dtype', (fixture, prefix, names) => {
  it('F32 in a bf16 checkpoint loads as F32, and narrowing it changes the bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stored-dtypes-'));
    try {
      await cp(join(GOLDEN, fixture, 'original'), dir, { recursive: true });
      const file = join(dir, 'model.safetensors');
      const parsed = parseSafetensors(new Uint8Array(await readFile(file)));
      const widened = new Map<string, Tensor>();
      for (const name of parsed.tensors.keys()) {
        const t = parsed.tensor(name);
        const wide = Object.keys(names).some((k) => name === prefix + k);
        widened.set(name, wide ? { dtype: 'F32', shape: t.shape, bytes: encodeFloats('F32', decodeFloats64(t.dtype, t.bytes).map((v, i) => v * (1 + 2 ** -12 * ((i % 3) + 1)))) } : { ...t, bytes: t.bytes.slice() });
      }
      for (const k of Object.keys(names)) expect(parsed.tensor(prefix + k).dtype, k).toBe('BF16');
      await writeFile(file, serializeSafetensors(widened, parsed.metadata));
      const loaded = await referenceLoader.load(dir, WHOLE);
      const layer = /layers\.(\d+)\./.exec(prefix)![1];
      for (const [stored, canonical] of Object.entries(names)) {
        const t = loaded.get(`layers.${layer}.${canonical}`)!;
        const want = widened.get(prefix + stored)!;
        expect(t.dtype, canonical).toBe('F32');
        expect(Buffer.compare(t.bytes, want.bytes), canonical).toBe(0);
      }
      // A loader that narrows them to the weights' dtype: the bit-exact comparison names the first one.
      const narrowing = new Map(loaded);
      for (const canonical of Object.values(names)) {
        const t = loaded.get(`layers.${layer}.${canonical}`)!;
        narrowing.set(`layers.${layer}.${canonical}`, { ...t, dtype: 'BF16', bytes: encodeFloats('BF16', decodeFloats64('F32', t.bytes)) });
      }
      expect(firstDifference(loaded, narrowing)?.tensor).toMatch(new RegExp(`^layers\\.${layer}\\.(${Object.values(names).join('|').replace(/\./g, '\\.')})$`));
      expect(firstDifference(loaded, loaded)).toBeUndefined();
      expect(loaded.get(`layers.${layer}.experts.w13`)!.dtype).toBe('BF16');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
