// The fast CPU forward against the float64 reference: every output element within the
// reference's strict float32 error bound (harness/compare/tolerance.ts), the same experts
// selected, across routing variants, activations, biases, shared experts, TP/EP splits,
// sizes that are not multiples of the register block, H and I past 1000, an EP rank with
// no experts and experts that no token chose.
import { afterAll, describe, expect, it } from 'vitest';
import { FastCpuBackend } from './backend.js';
import { ForwardInputError } from '../moe.js';
import { CanonicalTensorError } from '../experts.js';
import { allRanks, randomInput, randomLayer, type LayerOptions } from '../test/synthetic.js';
import { expectWithinReferenceBound } from '../test/against-reference.js';
import type { RankTensors } from '../backend.js';
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import { WHOLE, type Canonical, type Tensor } from '../../harness/tensor.js';

const backend = new FastCpuBackend({ threads: 2 });
afterAll(() => backend.dispose());

async function expectMatchesReference(seed: number, o: LayerOptions, tokens: number, tp: number, ep: number, placement: 'linear' | 'round_robin' = 'linear') {
  const layer = randomLayer(seed, o);
  return expectRanksMatch(layer.sem, allRanks(layer, tp, ep, placement), randomInput(seed + 1, tokens, o.hidden), tokens);
}

async function expectRanksMatch(sem: MoeSemantics, ranks: RankTensors[], x: Float32Array, tokens: number) {
  const { ref, got, worst } = await expectWithinReferenceBound(backend, sem, 3, ranks, x, tokens);
  expect(got.output).toBeInstanceOf(Float32Array);
  // The fast path is float32, not float64 in disguise: some rounding error must show.
  expect(worst).toBeGreaterThan(0);
  return { ref, got };
}

describe('fast-cpu-wasm against reference-f64', () => {
  it('mixtral routing, odd sizes, TP 2 × EP 2 round robin', async () => {
    await expectMatchesReference(1, { experts: 5, topK: 2, hidden: 37, intermediate: 22 }, 13, 2, 2, 'round_robin');
  });

  it('gpt_oss: clamped activation with expert biases (w2 bias once across TP ranks), top-k softmax, router bias', async () => {
    await expectMatchesReference(2, {
      experts: 6, topK: 3, hidden: 20, intermediate: 14, biases: true, routerBias: true,
      routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 0.3 },
    }, 11, 2, 1);
  });

  it('deepseek_v3: sigmoid group-limited routing with correction bias, shared expert, EP 3 linear', async () => {
    await expectMatchesReference(3, {
      experts: 8, topK: 2, hidden: 18, intermediate: 10, sharedIntermediate: 12, correction: true,
      routing: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2.5 },
    }, 9, 2, 3);
  });

  it('qwen2_moe: shared expert with sigmoid gate; llama4: routing weight scales the input', async () => {
    await expectMatchesReference(4, { experts: 4, topK: 2, hidden: 16, intermediate: 8, sharedIntermediate: 6, sharedGate: true }, 7, 1, 1);
    await expectMatchesReference(5, { experts: 4, topK: 1, hidden: 15, intermediate: 9, sharedIntermediate: 9, routing: { kind: 'topk_sigmoid_input' } }, 6, 3, 2);
  });

  it('H and I past 1000 (no loop caps, edge tiles of the GEMM)', async () => {
    // Built directly as F32 bytes: the nested-array generator is slow at this size.
    const [E, H, I] = [2, 1030, 1042];
    const sem = { ...randomLayer(6, { experts: E, topK: 2, hidden: 4, intermediate: 4 }).sem, hidden: H, intermediate: I };
    const f32 = (shape: number[], seed: number) => {
      const values = randomInput(seed, 1, shape.reduce((a, b) => a * b, 1)).map((v) => v * 0.05);
      return { dtype: 'F32' as const, shape, bytes: new Uint8Array(values.buffer) };
    };
    const tensors: Canonical = new Map<string, Tensor>([
      ['layers.3.experts.ids', { dtype: 'I32' as const, shape: [E], bytes: new Uint8Array(Int32Array.from([0, 1]).buffer) }],
      ['layers.3.experts.w13', f32([E, 2 * I, H], 10)],
      ['layers.3.experts.w2', f32([E, H, I], 11)],
      ['layers.3.router.weight', f32([E, H], 12)],
    ]);
    await expectRanksMatch(sem, [{ req: WHOLE, tensors }], randomInput(13, 3, H), 3);
  });

  it('an EP rank with no experts, and experts that no token chose', async () => {
    const { ref } = await expectMatchesReference(7, { experts: 2, topK: 1, hidden: 12, intermediate: 4 }, 1, 1, 3);
    expect(new Set(ref.selected).size).toBe(1);
  });

  it('resident weights: repeated forwards and a change of tensors give the streaming result, bit for bit', async () => {
    const resident = new FastCpuBackend({ threads: 2, residentWeights: true });
    try {
      for (const seed of [10, 11]) {
        const layer = randomLayer(seed, { experts: 4, topK: 2, hidden: 24, intermediate: 10, sharedIntermediate: 6 });
        const ranks = allRanks(layer, 2, 2);
        const x = randomInput(seed, 9, 24);
        const streamed = await backend.forward(layer.sem, 3, ranks, x, 9);
        expect((await resident.forward(layer.sem, 3, ranks, x, 9)).output).toEqual(streamed.output);
        expect((await resident.forward(layer.sem, 3, ranks, x, 9)).output).toEqual(streamed.output);
      }
    } finally {
      await resident.dispose();
    }
  });

  it('zero tokens gives an empty output', async () => {
    const layer = randomLayer(8, { experts: 3, topK: 2, hidden: 8, intermediate: 4 });
    const got = await backend.forward(layer.sem, 3, allRanks(layer, 1, 1), new Float32Array(0), 0);
    expect(got.output.length).toBe(0);
  });

  it('refuses a partial rank set, a malformed input and broken expert ids with typed errors', async () => {
    const layer = randomLayer(9, { experts: 4, topK: 2, hidden: 8, intermediate: 4 });
    const ranks = allRanks(layer, 2, 1);
    const x = randomInput(9, 3, 8);
    await expect(backend.forward(layer.sem, 3, ranks.slice(1), x, 3)).rejects.toBeInstanceOf(ForwardInputError);
    await expect(backend.forward(layer.sem, 3, ranks, x, 4)).rejects.toBeInstanceOf(ForwardInputError);
    const broken: RankTensors[] = ranks.map((r) => ({ req: r.req, tensors: new Map(r.tensors) }));
    broken[0]!.tensors.set('layers.3.experts.ids', { dtype: 'I32', shape: [4], bytes: new Uint8Array(Int32Array.from([0, 1, 1, 3]).buffer) });
    await expect(backend.forward(layer.sem, 3, broken, x, 3)).rejects.toBeInstanceOf(CanonicalTensorError);
    const w13 = ranks[0]!.tensors.get('layers.3.experts.w13')!;
    const hostile: RankTensors[] = ranks.map((r) => ({ req: r.req, tensors: new Map(r.tensors) }));
    hostile[0]!.tensors.set('layers.3.experts.w13', { ...w13, bytes: w13.bytes.subarray(0, 8) });
    await expect(backend.forward(layer.sem, 3, hostile, x, 3)).rejects.toThrow(/byte length does not match/);
    broken[0]!.tensors.delete('layers.3.experts.w2');
    await expect(backend.forward(layer.sem, 3, broken, x, 3)).rejects.toBeInstanceOf(CanonicalTensorError);
  });
});
