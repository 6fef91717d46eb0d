// Each gpu.js mode against the float64 reference, element by element within the float32
// rounding bound the reference carries (harness/compare/tolerance.ts), on random layers of
// several routing variants and TP/EP splits; plus sizes past gpu.js's 1000-iteration loop
// cap and past 2^24 weight elements, and proof that the mode asked for is the mode that ran.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import type { RankTensors } from '../backend.js';
import { findBackend } from '../backends.js';
import { compareToBounds } from '../../harness/compare/tolerance.js';
import { decodeFloats, encodeFloats } from '../../harness/safetensors/codecs.js';
import { referenceForward, type ReferenceResult } from '../moe.js';
import { KernelInputError } from './errors.js';
import { createGpujsBackend, type GpujsBackend, type GpujsMode } from './backend.js';
import { xoshiro128ss } from '../../harness/canonical/random.js';
import { randomFloats, randomRanks, type LayerExtras, type Split } from './random-ranks.js';

const SEED = Number(process.env.FC_SEED ?? 42);
const skipWebGpu = process.env.MOE_SKIP_WEBGPU === '1';

function semantics(over: Partial<MoeSemantics>): MoeSemantics {
  return {
    modelType: 'mixtral',
    experts: 6,
    topK: 2,
    hidden: 24,
    intermediate: 12,
    sharedIntermediate: 0,
    routing: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
    activation: { kind: 'silu_gated' },
    sharedGate: false,
    moeLayers: [0],
    ...over,
  };
}

interface Case {
  name: string;
  sem: MoeSemantics;
  split: Split;
  extras?: LayerExtras;
  /** Weights uniform in ±scale (default 0.1). */
  scale?: number;
}

const WHOLE: Split = { tpSize: 1, epSize: 1, placement: 'linear' };

const CASES: Case[] = [
  { name: 'mixtral softmax top-k renormalised', sem: semantics({}), split: WHOLE },
  {
    name: 'qwen2_moe with gated shared expert, TP2 x EP2 linear',
    sem: semantics({ modelType: 'qwen2_moe', routing: { kind: 'softmax_topk', renormalize: false, scaling: 1 }, sharedIntermediate: 8, sharedGate: true }),
    split: { tpSize: 2, epSize: 2, placement: 'linear' },
  },
  {
    name: 'deepseek_v3 sigmoid group-limited with correction bias and shared expert, EP3 round robin',
    sem: semantics({
      modelType: 'deepseek_v3', experts: 8, topK: 3, sharedIntermediate: 12,
      routing: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2.5 },
    }),
    split: { tpSize: 1, epSize: 3, placement: 'round_robin' },
    extras: { correctionBias: true },
  },
  {
    name: 'gpt_oss clamped activation with router and expert biases, TP2 (w2 bias counted once)',
    sem: semantics({ modelType: 'gpt_oss', routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 7 } }),
    split: { tpSize: 2, epSize: 1, placement: 'linear' },
    extras: { biases: true },
  },
  {
    name: 'gpt_oss with a clamp that bites (limit 0.05)',
    sem: semantics({ modelType: 'gpt_oss', routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 0.05 } }),
    split: WHOLE,
    extras: { biases: true },
  },
  {
    name: 'gate values of several hundred, where exp(-gate) overflows float32',
    sem: semantics({}),
    split: WHOLE,
    scale: 40,
  },
  {
    name: 'llama4_text sigmoid on the expert input, shared expert, top-1',
    sem: semantics({ modelType: 'llama4_text', topK: 1, routing: { kind: 'topk_sigmoid_input' }, sharedIntermediate: 12 }),
    split: WHOLE,
  },
];

/** Every element within the reference's strict float32 bound (harness/compare/tolerance.ts). */
function expectWithin(what: string, found: Float32Array, expected: Float64Array, strict: Float64Array, cols: number): void {
  const report = compareToBounds(found, expected, { strict, loose: strict }, cols);
  const where = `${what}: max error ${report.maxAbs.value} at row ${report.maxAbs.row}, col ${report.maxAbs.col}, bound ${report.maxAbs.bound}; ${report.notes.join('; ')} (seed ${SEED})`;
  expect(report.mismatches, where).toBe(0);
  expect(report.tier, where).toBe('pass');
}

async function checkAgainstReference(backend: GpujsBackend, sem: MoeSemantics, ranks: RankTensors[], tokens: number, seed: number): Promise<void> {
  const x = randomFloats(xoshiro128ss(seed), tokens * sem.hidden, 1);
  const ref = referenceForward(sem, 0, ranks, x, tokens, { bound: true });
  const got = await backend.forward(sem, 0, ranks, x, tokens);
  expect(got.ranOn).toBe(backend.mode);
  expectWithin('router logits', got.routerLogits, ref.routerLogits, ref.bounds!.logits, sem.experts);
  // Random logits sit far apart compared with float32 rounding: the selection must agree.
  expect(Array.from(got.selected)).toEqual(Array.from(ref.selected));
  expectWithin('output', got.output, ref.output, ref.bounds!.strict, sem.hidden);
}

/**
 * H = I = 1040 (past gpu.js's default 1000-iteration loop cap) and E = 8, so that w13
 * holds 8·2080·1040 ≈ 17.3M elements, past 2^24 where f32 index arithmetic goes wrong.
 * The router makes every token pick experts 7 and 6 (the last slots, whose up rows lie
 * past 2^24) with sigmoid weights near 1, so an error in either would show.
 */
const BIG = semantics({
  modelType: 'lfm2_moe', experts: 8, hidden: 1040, intermediate: 1040,
  routing: { kind: 'sigmoid_bias', renormalize: false, scaling: 1 },
});
let bigLayer: { ranks: RankTensors[]; x: Float32Array; tokens: number; ref: ReferenceResult } | undefined;
function big() {
  if (!bigLayer) {
    const { hidden: H, experts: E } = BIG;
    const random = xoshiro128ss(SEED);
    const routerWeight = randomFloats(random, E * H, 0.001);
    routerWeight.fill(0.05, 7 * H, 8 * H);
    routerWeight.fill(0.03, 6 * H, 7 * H);
    const tokens = 3;
    const x = randomFloats(random, tokens * H, 0.25).map((v) => v + 0.75);
    const ranks = randomRanks(BIG, 0, WHOLE, SEED, { routerWeight }, 0.05);
    bigLayer = { ranks, x, tokens, ref: referenceForward(BIG, 0, ranks, x, tokens, { bound: true }) };
  }
  return bigLayer;
}

const MODES: { mode: GpujsMode; skip: boolean }[] = [
  { mode: 'cpu', skip: false },
  { mode: 'webasm', skip: false },
  { mode: 'webgpu', skip: skipWebGpu },
];

for (const { mode, skip } of MODES) {
  describe.skipIf(skip)(`gpujs-${mode}`, () => {
    let backend: GpujsBackend;
    beforeAll(async () => {
      backend = await createGpujsBackend(mode);
      if (backend.adapter) console.log(`gpujs-${mode} adapter:`, backend.adapter);
    });
    afterAll(async () => {
      await backend?.dispose();
    });

    it('is named after its mode, and webgpu runs on a real adapter', () => {
      expect(backend.name).toBe(`gpujs-${mode}`);
      if (mode === 'webgpu') {
        expect(backend.adapter?.device).toBeTruthy();
        expect(backend.adapter?.device).not.toBe('null-backend');
      } else {
        expect(backend.adapter).toBeUndefined();
      }
    });

    for (const [i, c] of CASES.entries()) {
      it(`matches the float64 reference: ${c.name}`, async () => {
        const ranks = randomRanks(c.sem, 0, c.split, SEED + i, c.extras, c.scale);
        await checkAgainstReference(backend, c.sem, ranks, 9, SEED + 100 + i);
      });
    }

    it('computes H and I past 1000 and weights past 2^24 elements without truncation', async () => {
      const { ranks, x, tokens, ref } = big();
      const got = await backend.forward(BIG, 0, ranks, x, tokens);
      expect(Array.from(got.selected)).toEqual(Array(tokens).fill([7, 6]).flat());
      expectWithin('router logits', got.routerLogits, ref.routerLogits, ref.bounds!.logits, BIG.experts);
      expectWithin('output', got.output, ref.output, ref.bounds!.strict, BIG.hidden);
    });

    it('splits experts into kernel calls under a buffer limit and still matches the reference', async () => {
      const c = CASES[2]!;
      const perExpert = 4 * 2 * c.sem.intermediate * c.sem.hidden;
      // Two experts per call (a partial last chunk on the 3-expert rank), shared expert alone.
      const chunked = await createGpujsBackend(mode, { maxBufferBytes: 2 * perExpert });
      try {
        await checkAgainstReference(chunked, c.sem, randomRanks(c.sem, 0, c.split, SEED, c.extras), 9, SEED);
        const tooSmall = await createGpujsBackend(mode, { maxBufferBytes: perExpert - 4 });
        try {
          await expect(tooSmall.forward(c.sem, 0, randomRanks(c.sem, 0, c.split, SEED, c.extras), new Float32Array(c.sem.hidden), 1))
            .rejects.toBeInstanceOf(KernelInputError);
        } finally {
          await tooSmall.dispose();
        }
      } finally {
        await chunked.dispose();
      }
    });

    it('reads BF16 canonical tensors (decoded exactly to float32)', async () => {
      const c = CASES[1]!;
      const ranks = randomRanks(c.sem, 0, c.split, SEED, c.extras).map((r) => ({
        req: r.req,
        tensors: new Map([...r.tensors].map(([name, t]) => [name, t.dtype === 'F32' ? { dtype: 'BF16' as const, shape: t.shape, bytes: encodeFloats('BF16', decodeFloats('F32', t.bytes)) } : t])),
      }));
      await checkAgainstReference(backend, c.sem, ranks, 5, SEED);
    });

    it('is created by name from the backend registry', async () => {
      const created = await findBackend(`gpujs-${mode}`).create();
      try {
        expect(created.name).toBe(`gpujs-${mode}`);
        expect((created as GpujsBackend).mode).toBe(mode);
      } finally {
        await created.dispose?.();
      }
    });

    it('refuses an incomplete rank set instead of returning a partial sum', async () => {
      const sem = CASES[1]!.sem;
      const ranks = randomRanks(sem, 0, CASES[1]!.split, SEED);
      const x = new Float32Array(3 * sem.hidden);
      await expect(backend.forward(sem, 0, ranks.slice(1), x, 3)).rejects.toThrow(/ranks/);
    });

    it('refuses an input of the wrong size', async () => {
      const sem = CASES[0]!.sem;
      const ranks = randomRanks(sem, 0, WHOLE, SEED);
      await expect(backend.forward(sem, 0, ranks, new Float32Array(5), 3)).rejects.toThrow(/shape/);
    });
  });
}
