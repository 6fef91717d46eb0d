// The hand-written WGSL forward against the float64 reference, on the real WebGPU adapter
// of this machine (Mesa llvmpipe here, NVIDIA on the GPU machine): every output element
// within the reference's strict float32 bound, the same experts selected. Sizes are tiny
// (llvmpipe is a CPU) but cross the 64 × 64 tile and 16-deep slab edges. A missing adapter
// FAILS this file unless MOE_SKIP_WEBGPU=1 is set explicitly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tilingKey, WgslWebGpuBackend, type ForwardTiling } from './backend.js';
import { DEFAULT_SKINNY, gemmShader, kChunkOf, type GemmTiling } from './shaders.js';
import { ForwardInputError } from '../moe.js';
import { allRanks, randomInput, randomLayer, rng, type LayerOptions } from '../test/synthetic.js';
import { route } from '../routing.js';
import type { Routing } from '../../harness/layouts/semantics.js';
import { expectWithinReferenceBound } from '../test/against-reference.js';
import type { RankTensors } from '../backend.js';
import { decodeFloats, encodeFloats } from '../../harness/safetensors/codecs.js';

/** The rank with its expert and shared-expert matrices re-encoded (values rounded to the dtype). */
function withWeightsAs(rank: RankTensors, dtype: 'BF16' | 'F16'): RankTensors {
  const tensors = new Map(rank.tensors);
  for (const [name, t] of rank.tensors) {
    if (/\.(experts|shared)\.w(13|2)$/.test(name)) tensors.set(name, { ...t, dtype, bytes: encodeFloats(dtype, decodeFloats(t.dtype, t.bytes)) });
  }
  return { req: rank.req, tensors };
}

const skip = process.env.MOE_SKIP_WEBGPU === '1';
let backend: WgslWebGpuBackend;
beforeAll(async () => {
  if (!skip) backend = await WgslWebGpuBackend.create();
});
afterAll(async () => {
  await backend?.dispose();
});

async function expectMatchesReference(seed: number, o: LayerOptions, tokens: number, tp: number, ep: number, b = backend) {
  const layer = randomLayer(seed, o);
  const x = randomInput(seed + 1, tokens, o.hidden);
  return (await expectWithinReferenceBound(b, layer.sem, 3, allRanks(layer, tp, ep), x, tokens)).got;
}

describe.skipIf(skip)('wgsl-webgpu against reference-f64', () => {
  it('runs on a real adapter', () => {
    console.log('wgsl-webgpu adapter:', backend.adapter);
    expect(backend.adapter.device).not.toBe('');
  });

  it('mixtral routing across tile edges (70 tokens, H 67, I 40), TP 2 × EP 2', async () => {
    await expectMatchesReference(21, { experts: 4, topK: 2, hidden: 67, intermediate: 40 }, 70, 2, 2);
  });

  it('gpt_oss clamped activation with biases; deepseek_v3 routing with a shared expert', async () => {
    await expectMatchesReference(22, {
      experts: 6, topK: 2, hidden: 20, intermediate: 14, biases: true, routerBias: true,
      routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 0.3 },
    }, 9, 2, 1);
    await expectMatchesReference(23, {
      experts: 8, topK: 2, hidden: 18, intermediate: 10, sharedIntermediate: 12, sharedGate: true, correction: true,
      routing: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2.5 },
    }, 7, 1, 3);
  });

  it('llama4 input scaling; an EP rank without experts; resident weights give the same bits twice', async () => {
    await expectMatchesReference(24, { experts: 4, topK: 1, hidden: 15, intermediate: 9, sharedIntermediate: 9, routing: { kind: 'topk_sigmoid_input' } }, 6, 1, 1);
    await expectMatchesReference(25, { experts: 2, topK: 1, hidden: 12, intermediate: 4 }, 3, 1, 3);
    const resident = await WgslWebGpuBackend.create({ residentWeights: true });
    try {
      const first = await expectMatchesReference(26, { experts: 3, topK: 2, hidden: 16, intermediate: 8 }, 5, 1, 1, resident);
      const second = await expectMatchesReference(26, { experts: 3, topK: 2, hidden: 16, intermediate: 8 }, 5, 1, 1, resident);
      expect(second.output).toEqual(first.output);
    } finally {
      await resident.dispose();
    }
  });

  it('another tiling (8 × 4 threads, 4 rows each, 4-deep slabs) gives the same answers; a bad tiling is refused', async () => {
    const other = await WgslWebGpuBackend.create({ tiling: { wx: 8, wy: 4, rm: 4, bk: 4 } });
    try {
      await expectMatchesReference(28, { experts: 4, topK: 2, hidden: 45, intermediate: 70 }, 33, 1, 2, other);
    } finally {
      await other.dispose();
    }
    expect(() => gemmShader({ mode: 'up', dtype: 'f32', vec: true, tiling: { wx: 16, wy: 8, rm: 4, bk: 6 } })).toThrow(RangeError);
  });

  it('the few-rows (skinny) kernels: f32, bf16 and f16, vector and element-wise loads, biases, a shared expert, tiles cut at tm rows', async () => {
    // H 40 and R 24 are multiples of 8 (16-byte bf16 loads); H 45 / R 70 take the element-wise loads.
    const vectorShape: LayerOptions = { experts: 5, topK: 2, hidden: 40, intermediate: 24, sharedIntermediate: 16, biases: true, routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 0.3 } };
    const oddShape: LayerOptions = { experts: 4, topK: 2, hidden: 45, intermediate: 70, sharedIntermediate: 12 };
    for (const tiling of [{ kind: 'skinny', lanes: 4, pairs: 3, tm: 3 }, { kind: 'skinny', lanes: 8, pairs: 2, tm: 8 }] as const) {
      const skinny = await WgslWebGpuBackend.create({ tiling });
      try {
        for (const [seed, o, tokens] of [[34, vectorShape, 23], [35, oddShape, 17]] as const) {
          const layer = randomLayer(seed, o);
          const x = randomInput(seed + 1, tokens, o.hidden);
          await expectWithinReferenceBound(skinny, layer.sem, 3, allRanks(layer, 2, 2), x, tokens);
          for (const dtype of ['BF16', 'F16'] as const) {
            await expectWithinReferenceBound(skinny, layer.sem, 3, allRanks(layer, 1, 2).map((rank) => withWeightsAs(rank, dtype)), x, tokens);
          }
        }
      } finally {
        await skinny.dispose();
      }
    }
    expect(() => gemmShader({ mode: 'down', dtype: 'bf16', vec: true, tiling: { kind: 'skinny', lanes: 8, pairs: 2, tm: 9 } })).toThrow(RangeError);
    // Without autotune, up to SKINNY_ROWS rows per expert the experts take DEFAULT_SKINNY, above it a tiled GEMM.
    const fresh = await WgslWebGpuBackend.create();
    try {
      const expertPipelines = () => [...fresh['pipelines'].keys()].filter((key) => key.startsWith('["up"'));
      await expectMatchesReference(38, { experts: 8, topK: 2, hidden: 16, intermediate: 8 }, 12, 1, 1, fresh);
      // DEFAULT_SKINNY has 256 threads; a device capped at 128 (llvmpipe here) takes the skinny candidate that fits.
      expect(expertPipelines()).toHaveLength(1);
      expect(expertPipelines()[0]).toContain('"kind":"skinny"');
      if (fresh['device'].limits.maxComputeInvocationsPerWorkgroup >= 256) expect(expertPipelines()).toEqual([JSON.stringify(['up', DEFAULT_SKINNY, 'f32', true])]);
      await expectMatchesReference(39, { experts: 2, topK: 2, hidden: 16, intermediate: 8 }, 40, 1, 1, fresh);
      expect(expertPipelines().filter((key) => !key.includes('skinny'))).toHaveLength(1);
    } finally {
      await fresh.dispose();
    }
  });

  it('split-K of the down GEMM (parts summed by the combine, the bias once, parts past K zero) matches the reference, tiled and skinny', async () => {
    const shapes: [number, LayerOptions, number][] = [
      // R 80 (vector loads, three parts of 32, 32, 16), biases, a shared expert of 40 (two parts), TP 1 × EP 2.
      [43, { experts: 5, topK: 2, hidden: 40, intermediate: 80, sharedIntermediate: 40, biases: true }, 19],
      // R 70 (element-wise loads); at TP 2, R 35 leaves the third part empty.
      [44, { experts: 4, topK: 2, hidden: 45, intermediate: 70, sharedIntermediate: 12, sharedGate: true, correction: true, routing: { kind: 'sigmoid_group_limited_bias', groups: 2, topkGroups: 1, renormalize: true, scaling: 2.5 } }, 13],
    ];
    for (const tiling of [{ wx: 8, wy: 4, rm: 4, bk: 4, splitK: 3 }, { kind: 'skinny', lanes: 4, pairs: 3, tm: 3, splitK: 3 }] as const) {
      const split = await WgslWebGpuBackend.create({ tiling });
      try {
        for (const [seed, o, tokens] of shapes) {
          const layer = randomLayer(seed, o);
          const x = randomInput(seed + 1, tokens, o.hidden);
          await expectWithinReferenceBound(split, layer.sem, 3, allRanks(layer, 1, 2), x, tokens);
          await expectWithinReferenceBound(split, layer.sem, 3, allRanks(layer, 2, 1).map((rank) => withWeightsAs(rank, 'BF16')), x, tokens);
        }
      } finally {
        await split.dispose();
      }
    }
    expect(kChunkOf(80, 3)).toBe(32);
    expect(kChunkOf(14336, 4)).toBe(3584);
    expect(() => gemmShader({ mode: 'down', dtype: 'f32', vec: true, tiling: { wx: 8, wy: 4, rm: 4, bk: 4, splitK: 0 } })).toThrow(RangeError);
  });

  it('the up and the down GEMMs at different tilings (tiles of 16 rows against 3, either way round; split-K on down only) match the reference', async () => {
    // The PLAN cuts w13's tile tables at the up tiling's rows and w2's at the down tiling's: a table cut at the other's rows
    // leaves rows uncomputed where its tiles are longer than the kernel's, in one order or the other.
    const tiled = { wx: 8, wy: 4, rm: 4, bk: 4 } as const;
    const skinny = { kind: 'skinny', lanes: 4, pairs: 3, tm: 3 } as const;
    // R 80 (40 at TP 2): the down GEMMs' K really splits (parts of 64 + 16, 32 + 8; 32 + 32 + 16), so a down GEMM dispatched
    // with the up tiling's parts (one) or a combine summing the wrong count of parts fails.
    const o: LayerOptions = { experts: 5, topK: 2, hidden: 40, intermediate: 80, sharedIntermediate: 40, biases: true, routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 0.3 } };
    const layer = randomLayer(46, o);
    const x = randomInput(47, 37, o.hidden);
    for (const tiling of [{ up: tiled, down: { ...skinny, splitK: 2 } }, { up: skinny, down: { ...tiled, splitK: 3 } }] satisfies ForwardTiling[]) {
      // Weights cut into chunks (f32: one w13 or two w2 matrices each): w13 and w2 chunks differ in experts per chunk.
      const pair = await WgslWebGpuBackend.create({ tiling, chunkBytes: 2 * 80 * 40 * 4 });
      try {
        await expectWithinReferenceBound(pair, layer.sem, 3, allRanks(layer, 1, 2), x, 37);
        await expectWithinReferenceBound(pair, layer.sem, 3, allRanks(layer, 2, 1).map((rank) => withWeightsAs(rank, 'BF16')), x, 37);
        // Pipelines are keyed without split-K (the shader is the same; the parts come in the uniform).
        const keys = [...pair['pipelines'].keys()];
        const { splitK: _split, ...down } = tiling.down;
        expect(keys).toContain(JSON.stringify(['up', tiling.up, 'f32', true]));
        expect(keys).toContain(JSON.stringify(['down', down, 'f32', true]));
        expect(keys.filter((key) => key.includes('splitK'))).toEqual([]);
      } finally {
        await pair.dispose();
      }
    }
    const tooLarge = { wx: 64, wy: 64, rm: 8, bk: 8 } as const;
    await expect(WgslWebGpuBackend.create({ tiling: { up: tiled, down: tooLarge } })).rejects.toThrow(/exceeds this device's workgroup limits/);
    await expect(WgslWebGpuBackend.create({ tiling: { up: { ...tiled, splitK: 2 }, down: tiled } })).rejects.toThrow(/never split K/);
    expect(tilingKey({ up: tiled, down: tiled })).toBe(JSON.stringify(tiled));
    expect(JSON.parse(tilingKey({ up: tiled, down: skinny }))).toEqual({ up: tiled, down: skinny });
  });

  it('bf16 and f16 weights read as stored, vector loads (H, R multiples of 4), weights cut into chunks of 1–2 experts', async () => {
    const o: LayerOptions = { experts: 5, topK: 2, hidden: 36, intermediate: 24, sharedIntermediate: 8, biases: true };
    const layer = randomLayer(29, o);
    const x = randomInput(30, 19, o.hidden);
    const chunked = await WgslWebGpuBackend.create({ chunkBytes: 2 * 2 * 24 * 36 * 2 });
    try {
      for (const dtype of ['BF16', 'F16'] as const) {
        const ranks = allRanks(layer, 1, 2).map((rank) => withWeightsAs(rank, dtype));
        await expectWithinReferenceBound(backend, layer.sem, 3, ranks, x, 19);
        await expectWithinReferenceBound(chunked, layer.sem, 3, ranks, x, 19);
      }
      await expectWithinReferenceBound(chunked, layer.sem, 3, allRanks(layer, 2, 1), x, 19);
    } finally {
      await chunked.dispose();
    }
  });

  it('routes on the GPU as kernels/routing.ts does, for every routing kind it runs (ids exact, weights within 2e-6 relative)', async () => {
    const kinds: Routing[] = [
      { kind: 'softmax_topk', renormalize: true, scaling: 1 },
      { kind: 'softmax_topk', renormalize: false, scaling: 1.5 },
      { kind: 'softmax_topk_pnorm', p: 2 },
      { kind: 'softmax_group_limited', groups: 1, topkGroups: 1, scaling: 16 },
      { kind: 'softmax_group_limited', groups: 4, topkGroups: 2, scaling: 2 },
      { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2.5 },
      { kind: 'sigmoid_group_limited_bias', groups: 8, topkGroups: 3, renormalize: false, scaling: 1, maskNegInf: true },
      { kind: 'sigmoid_group_limited_bias', groups: 2, topkGroups: 1, renormalize: true, scaling: 1, softcap: 3 },
      { kind: 'softmax_group_top2', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.2 },
      { kind: 'softmax_group_top2', groups: 1, topkGroups: 1, renormalize: false, scaling: 1 },
      { kind: 'softmax_bias_normmin', normMin: 1e-12 },
      { kind: 'sigmoid_bias', renormalize: true, scaling: 1 },
      { kind: 'topk_softmax' },
      { kind: 'topk_softmax', scaling: 0.5 },
      { kind: 'topk_sigmoid', renormalize: true, scaling: 2 },
      { kind: 'topk_sigmoid_input' },
    ];
    const E = 32;
    const tokens = 70;
    const r = rng(41);
    for (const [i, routing] of kinds.entries()) {
      const k = i % 2 === 0 ? 8 : 3;
      const sem = { ...randomLayer(40, { experts: E, topK: k, hidden: 4, intermediate: 4 }).sem, routing };
      const logits = Float32Array.from({ length: tokens * E }, () => 4 * r());
      // Exact ties: the lower id first, on both sides.
      logits.copyWithin(5, 3, 4);
      const correction = Float32Array.from({ length: E }, () => 0.05 * r());
      const want = route(sem, logits, tokens, correction);
      const got = await backend.routeOnDevice(sem, logits, tokens, correction);
      expect(Array.from(got.selected), routing.kind).toEqual(Array.from(want.selected));
      for (let j = 0; j < want.weights.length; j++) {
        expect(Math.abs(got.weights[j]! - want.weights[j]!), `${JSON.stringify(routing)} weight ${j}`).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(want.weights[j]!)));
      }
    }
    await expect(backend.routeOnDevice({ ...randomLayer(40, { experts: 4, topK: 2, hidden: 4, intermediate: 4 }).sem, routing: { kind: 'sparsemixer', jitterEps: 0.01 } }, new Float32Array(8), 2)).rejects.toThrow(/runs on the CPU/);
  });

  it('whole forwards with GPU routing of several kinds, and sparsemixer routed on the CPU, match the reference', async () => {
    const kinds: Routing[] = [
      { kind: 'softmax_topk_pnorm', p: 2 },
      { kind: 'softmax_group_limited', groups: 4, topkGroups: 2, scaling: 2 },
      { kind: 'softmax_group_top2', groups: 2, topkGroups: 1, renormalize: true, scaling: 1.2 },
      { kind: 'softmax_bias_normmin', normMin: 1e-12 },
      { kind: 'sigmoid_bias', renormalize: true, scaling: 1 },
      { kind: 'topk_sigmoid', renormalize: false },
      { kind: 'sparsemixer', jitterEps: 0.01 },
    ];
    for (const [i, routing] of kinds.entries()) {
      await expectMatchesReference(50 + i, { experts: 8, topK: 2, hidden: 20, intermediate: 12, correction: true, routing }, 13, 1, 2);
    }
    // More experts than the PLAN shader's 128-expert blocks, cut into weight chunks of 50 experts.
    const many = await WgslWebGpuBackend.create({ chunkBytes: 50 * 2 * 4 * 8 * 4 });
    try {
      await expectMatchesReference(59, { experts: 300, topK: 4, hidden: 8, intermediate: 4 }, 150, 1, 1, many);
    } finally {
      await many.dispose();
    }
    // longcat_flash's zero-compute experts: 4 real experts and 2 identity ones that the router also scores.
    const real = randomLayer(60, { experts: 4, topK: 3, hidden: 12, intermediate: 8 });
    const router = randomLayer(61, { experts: 6, topK: 3, hidden: 12, intermediate: 8 }).router;
    const sem = { ...real.sem, experts: 6, zeroExperts: 2 };
    const ranks = allRanks(real, 1, 2).map((r) => ({ req: r.req, tensors: new Map(r.tensors).set('layers.3.router.weight', { dtype: 'F32' as const, shape: [6, 12], bytes: encodeFloats('F32', router.flat()) }) }));
    const { ref } = await expectWithinReferenceBound(backend, sem, 3, ranks, randomInput(62, 17, 12), 17);
    expect(Array.from(ref.selected).some((id) => id >= 4)).toBe(true);
  });

  it('the device-resident forward (x in, output left in GPU buffers) gives the host forward\'s bits', async () => {
    const o: LayerOptions = {
      experts: 8, topK: 2, hidden: 20, intermediate: 12, sharedIntermediate: 8, sharedGate: true, correction: true,
      routing: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2.5 },
    };
    const layer = randomLayer(32, o);
    const ranks = allRanks(layer, 1, 2);
    const x = randomInput(33, 33, o.hidden);
    const host = await expectWithinReferenceBound(backend, layer.sem, 3, ranks, x, 33);
    const xBuf = backend.inputBuffer(x);
    try {
      const onDevice = await backend.forwardOnDevice(layer.sem, 3, ranks, xBuf, 33);
      expect(await backend.readOutput(layer.sem, onDevice)).toEqual(host.got.output);
      // Repeated in one submission (the benchmark's GPU time per forward): the same bits.
      const repeated = await backend.forwardOnDevice(layer.sem, 3, ranks, xBuf, 33, 3);
      expect(await backend.readOutput(layer.sem, repeated)).toEqual(host.got.output);
      await expect(backend.forwardOnDevice(layer.sem, 3, ranks, xBuf, 33, 0)).rejects.toBeInstanceOf(ForwardInputError);
      await expect(backend.forwardOnDevice(layer.sem, 3, ranks, xBuf, 34)).rejects.toBeInstanceOf(ForwardInputError);
    } finally {
      xBuf.destroy();
    }
  });

  it('a forward of a shape already run makes no buffer and no bind group (pool.ts) and gives the same bits', async () => {
    const o: LayerOptions = { experts: 6, topK: 2, hidden: 24, intermediate: 16, sharedIntermediate: 8, correction: true, routing: { kind: 'sigmoid_group_limited_bias', groups: 3, topkGroups: 2, renormalize: true, scaling: 2 } };
    const layer = randomLayer(36, o);
    const ranks = allRanks(layer, 1, 2);
    const x = randomInput(37, 11, o.hidden);
    for (const residentWeights of [true, false]) {
      const b = await WgslWebGpuBackend.create({ residentWeights });
      const device = b['device'];
      const made = { buffers: 0, groups: 0 };
      const createBuffer = device.createBuffer.bind(device);
      const createBindGroup = device.createBindGroup.bind(device);
      device.createBuffer = (d) => (made.buffers++, createBuffer(d));
      device.createBindGroup = (d) => (made.groups++, createBindGroup(d));
      try {
        const first = await b.forward(layer.sem, 3, ranks, x, 11);
        const before = { ...made };
        const second = await b.forward(layer.sem, 3, ranks, x, 11);
        expect(second.output).toEqual(first.output);
        expect(made, `residentWeights ${residentWeights}`).toEqual(before);
        expect(before.buffers).toBeGreaterThan(0);
        // Another token count is another shape: new tables, then kept again.
        await b.forward(layer.sem, 3, ranks, x.subarray(0, 5 * o.hidden), 5);
        expect(made.groups).toBeGreaterThan(before.groups);
        await expectWithinReferenceBound(b, layer.sem, 3, ranks, x, 11);
      } finally {
        device.createBuffer = createBuffer;
        device.createBindGroup = createBindGroup;
        await b.dispose();
      }
    }
  });

  it('autotune times the candidate tilings once per shape and keeps the fastest', async () => {
    const tuned = await WgslWebGpuBackend.create({ autotune: true });
    try {
      await expectMatchesReference(31, { experts: 4, topK: 2, hidden: 16, intermediate: 12 }, 9, 1, 1, tuned);
      await expectMatchesReference(31, { experts: 4, topK: 2, hidden: 16, intermediate: 12 }, 9, 1, 1, tuned);
      expect(tuned.tunings.size).toBe(1);
      const [entry] = [...tuned.tunings.values()];
      const keys = Object.keys(entry!.timings);
      expect(keys.length).toBeGreaterThan(1);
      expect(keys).toContain(tilingKey(entry!.tiling));
      expect(entry!.timings[tilingKey(entry!.tiling)]).toBe(Math.min(...Object.values(entry!.timings)));
      // The up GEMMs never split K, so no up tiling is timed with a splitK it would not use.
      const timed = keys.map((key) => JSON.parse(key) as GemmTiling | ForwardTiling).map((t) => ('up' in t ? t : { up: t, down: t }));
      expect(timed.filter((t) => t.up.splitK !== undefined)).toEqual([]);
      // Second round: the down GEMMs alone at every candidate, the up GEMMs at one tiling (the first round's winner).
      const candidates: GemmTiling[] = tuned['candidates']();
      const ups = new Set(timed.map((t) => JSON.stringify(t.up)));
      const secondRound = [...ups].filter((up) => candidates.every((down) => tilingKey({ up: JSON.parse(up) as GemmTiling, down }) in entry!.timings));
      expect(secondRound).toHaveLength(1);
      // TP 2 and EP 2 of the same layer are other shapes (per-rank R, or experts per rank), tuned apart.
      await expectMatchesReference(31, { experts: 4, topK: 2, hidden: 16, intermediate: 12 }, 9, 2, 1, tuned);
      await expectMatchesReference(31, { experts: 4, topK: 2, hidden: 16, intermediate: 12 }, 9, 1, 2, tuned);
      expect(tuned.tunings.size).toBe(3);
    } finally {
      await tuned.dispose();
    }
  });

  it('autotune skips the tilings whose row tiles would not fit one dispatch, and a given one is refused with the counts', async () => {
    const tuned = await WgslWebGpuBackend.create({ autotune: true });
    const limited = await WgslWebGpuBackend.create({ tiling: { wx: 16, wy: 2, rm: 4, bk: 24 } });
    // As if the device granted 40 workgroups per dimension: 400 routed rows in tiles of 8 rows would need 50.
    for (const b of [tuned, limited]) {
      const device = b['device'];
      const limits = device.limits as unknown as Record<string | symbol, unknown>;
      Object.defineProperty(device, 'limits', { value: new Proxy(limits, { get: (l, name) => (name === 'maxComputeWorkgroupsPerDimension' ? 40 : l[name]) }) });
    }
    try {
      await expectMatchesReference(42, { experts: 2, topK: 2, hidden: 8, intermediate: 8 }, 200, 1, 1, tuned);
      const [entry] = [...tuned.tunings.values()];
      type Rows = { wx?: number; wy?: number; rm?: number; tm?: number };
      const timed = Object.keys(entry!.timings).flatMap((key) => {
        const t = JSON.parse(key) as Rows | { up: Rows; down: Rows };
        return 'up' in t ? [t.up, t.down] : [t];
      });
      expect(timed.length).toBeGreaterThan(0);
      for (const t of timed) expect(Math.ceil(400 / (t.tm ?? t.wy! * t.rm!)) + 1).toBeLessThanOrEqual(40);
      await expect(expectMatchesReference(42, { experts: 2, topK: 2, hidden: 8, intermediate: 8 }, 200, 1, 1, limited)).rejects.toThrow(/larger than one dispatch/);
    } finally {
      await tuned.dispose();
      await limited.dispose();
    }
  });

  it('a malformed tiling is refused before any pipeline compiles, and leaves no error scope open on the shared device', async () => {
    const device = backend['device'];
    // Balanced: nothing to pop.
    await expect(device.popErrorScope()).rejects.toThrow();
    await expect(WgslWebGpuBackend.create({ tiling: { wx: 16, wy: 8, rm: 4, bk: 6 } })).rejects.toThrow(RangeError);
    await expect(WgslWebGpuBackend.create({ tiling: { up: { wx: 8, wy: 4, rm: 4, bk: 4 }, down: { kind: 'skinny', lanes: 8, pairs: 2, tm: 9 } } })).rejects.toThrow(RangeError);
    await expect(device.popErrorScope()).rejects.toThrow();
  });

  it('expert activations or outputs larger than one storage binding are refused with the sizes, not left to the device', async () => {
    const small = await WgslWebGpuBackend.create();
    // As if the device's bindings held 4 KiB: 40 routed rows × R 64 × 4 bytes of activations is 10 KiB.
    const device = small['device'];
    const limits = device.limits as unknown as Record<string | symbol, unknown>;
    Object.defineProperty(device, 'limits', { value: new Proxy(limits, { get: (l, name) => (name === 'maxStorageBufferBindingSize' ? 4096 : l[name]) }) });
    try {
      const failure = expectMatchesReference(48, { experts: 4, topK: 2, hidden: 8, intermediate: 64 }, 20, 1, 1, small);
      await expect(failure).rejects.toThrow(/expert activations \(routed rows × R\) larger than one storage binding at 20 tokens/);
      await expect(failure).rejects.toMatchObject({ expected: '≤ 4096 bytes', found: 40 * 64 * 4 });
    } finally {
      await small.dispose();
    }
  });

  it('refuses a malformed input with a typed error', async () => {
    const layer = randomLayer(27, { experts: 3, topK: 2, hidden: 8, intermediate: 4 });
    await expect(backend.forward(layer.sem, 3, allRanks(layer, 1, 1), new Float32Array(5), 1)).rejects.toBeInstanceOf(ForwardInputError);
  });
});
