// The reference loader on every golden fixture made by transformers: both layouts give
// byte-identical canonical tensors, which match an independent derivation from the raw
// stored tensors; every TP/EP split reassembles the whole; invalid splits are refused.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointDir } from '../checkpoint/directory.js';
import { WHOLE, type Canonical, type EpPlacement, type ParallelRequest, type Tensor } from '../tensor.js';
import { detect } from './detect.js';
import { materialize, planLoad } from './load.js';
import { InvalidParallelRequest } from '../canonical/errors.js';

const GOLDEN = join(import.meta.dirname, '../../golden/hf');
const fixtures = readdirSync(GOLDEN, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

async function load(dir: CheckpointDir, req: ParallelRequest): Promise<Canonical> {
  return materialize(await planLoad(dir, req));
}

function expectSameCanonical(a: Canonical, b: Canonical): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect({ name, dtype: u.dtype, shape: u.shape }).toEqual({ name, dtype: t.dtype, shape: t.shape });
    expect(Buffer.compare(Buffer.from(t.bytes), Buffer.from(u.bytes)), name).toBe(0);
  }
}

/** Element `index` of a tensor as its raw bits (independent of the loader's own views). */
function element(t: Tensor, index: number[]): number {
  const size = t.bytes.length / t.shape.reduce((a, b) => a * b, 1);
  let flat = 0;
  t.shape.forEach((n, d) => (flat = flat * n + index[d]!));
  let bits = 0;
  for (let k = size - 1; k >= 0; k--) bits = bits * 256 + t.bytes[flat * size + k]!;
  return bits;
}

/** Canonical w13[e][row][h] and w2[e][h][i] derived by hand from the stored tensors of one family. */
type Oracle = { w13: (e: number, row: number, h: number) => number; w2: (e: number, h: number, i: number) => number };
async function oracle(dir: CheckpointDir, type: string, layer: number, I: number): Promise<Oracle> {
  const has = (n: string) => dir.has(n);
  const raw = async (n: string) => dir.read(n);
  const p = type === 'dbrx' ? `transformer.blocks.${layer}.ffn` : `model.layers.${layer}`;
  // gemma4's experts are a child of the decoder layer itself (the last candidate); deepseek_v4's published keys have no root: layers.L.ffn.
  const modules = [
    ...['model', 'backbone', 'model.language_model', 'thinker.model', 'language_model.model'].flatMap((root) => ['mlp', 'block_sparse_moe', 'feed_forward', 'mixer', 'moe'].map((m) => `${root}.layers.${layer}.${m}`)),
    `layers.${layer}.ffn`,
    `model.layers.${layer}`,
  ];
  const m = modules.find((x) => dir.tensorNames().some((n) => n.startsWith(x + '.experts') || n.startsWith(x + '.input_linear') || n.startsWith(x + '.down_embed') || (n === `${x}.gate_proj.weight` && dir.info(n).shape.length === 3))) ?? p;
  if (type === 'doge') {
    // Single neurons: w13[e] is down_embed row e, w2[e] the column up_embed row e.
    const down = await raw(`${m}.down_embed.weight`);
    const up = await raw(`${m}.up_embed.weight`);
    return { w13: (e, _row, h) => element(down, [e, h]), w2: (e, h) => element(up, [e, h]) };
  }
  if (has(`${m}.gate_proj.weight`) && dir.info(`${m}.gate_proj.weight`).shape.length === 3) {
    // step3p7's original: gate/up/down already stacked per layer, [E, I, H] and [E, H, I].
    const [g, u, d] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((k) => raw(`${m}.${k}.weight`)));
    return { w13: (e, row, h) => (row < I ? element(g!, [e, row, h]) : element(u!, [e, row - I, h])), w2: (e, h, i) => element(d!, [e, h, i]) };
  }
  if (type === 'nemotron_h') {
    // Non-gated: w13 is the up rows alone.
    if (has(`${m}.experts.up_proj`)) {
      const up = await raw(`${m}.experts.up_proj`);
      const down = await raw(`${m}.experts.down_proj`);
      return { w13: (e, row, h) => element(up, [e, row, h]), w2: (e, h, i) => element(down, [e, h, i]) };
    }
    const ups = new Map<number, Tensor[]>();
    for (let e = 0; has(`${m}.experts.${e}.up_proj.weight`); e++) ups.set(e, await Promise.all(['up_proj', 'down_proj'].map((k) => raw(`${m}.experts.${e}.${k}.weight`))));
    return { w13: (e, row, h) => element(ups.get(e)![0]!, [row, h]), w2: (e, h, i) => element(ups.get(e)![1]!, [h, i]) };
  }
  if (type === 'dbrx') {
    const [w1, v1, w2] = await Promise.all(['w1', 'v1', 'w2'].map((k) => raw(`${p}.experts.mlp.${k}`)));
    return {
      w13: (e, row, h) => (row < I ? element(w1!, [e * I + row, h]) : element(v1!, [e * I + row - I, h])),
      w2: (e, h, i) => element(w2!, [e * I + i, h]),
    };
  }
  if (type === 'qwen3_vl_moe') {
    // Same names in both folders: original/ holds [E, H, 2I] / [E, I, H], fused/ [E, 2I, H] / [E, H, I].
    const gu = await raw(`${m}.experts.gate_up_proj`);
    const down = await raw(`${m}.experts.down_proj`);
    const transposed = gu.shape[2] === 2 * I;
    return {
      w13: (e, row, h) => element(gu, transposed ? [e, h, row] : [e, row, h]),
      w2: (e, h, i) => element(down, transposed ? [e, i, h] : [e, h, i]),
    };
  }
  if (has(`${m}.experts.fc1.weight`)) {
    // aria: fc1 [E, H, 2I] (x · fc1 = [gate | up]), fc2 [E, I, H].
    const [fc1, fc2] = await Promise.all([raw(`${m}.experts.fc1.weight`), raw(`${m}.experts.fc2.weight`)]);
    return { w13: (e, row, h) => element(fc1, [e, h, row]), w2: (e, h, i) => element(fc2, [e, i, h]) };
  }
  if (type === 'gpt_oss' || type === 'llama4_text' || type === 'llama4' || type === 'openai_privacy_filter') {
    // [E, H, 2I]: gpt_oss interleaves gate (even) and up (odd); llama4 and openai_privacy_filter concatenate them.
    const gu = await raw(`${m}.experts.gate_up_proj`);
    const down = await raw(`${m}.experts.down_proj`);
    const col = (row: number) => (type === 'gpt_oss' ? (row < I ? 2 * row : 2 * (row - I) + 1) : row);
    return { w13: (e, row, h) => element(gu, [e, h, col(row)]), w2: (e, h, i) => element(down, [e, i, h]) };
  }
  if (has(`${m}.input_linear.weight`)) {
    const gu = await raw(`${m}.input_linear.weight`);
    const down = await raw(`${m}.output_linear.weight`);
    return { w13: (e, row, h) => element(gu, [e, row, h]), w2: (e, h, i) => element(down, [e, h, i]) };
  }
  if (has(`${m}.experts.gate_up_proj`)) {
    const gu = await raw(`${m}.experts.gate_up_proj`);
    const down = await raw(`${m}.experts.down_proj`);
    return { w13: (e, row, h) => element(gu, [e, row, h]), w2: (e, h, i) => element(down, [e, h, i]) };
  }
  const [g, u, d] = has(`${m}.experts.0.w1.weight`) ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
  const experts = new Map<number, Tensor[]>();
  // Up to the last expert with a down projection (longcat_flash stores gate/up for its zero-compute experts too).
  for (let e = 0; has(`${m}.experts.${e}.${d}.weight`); e++) experts.set(e, await Promise.all([g, u, d].map((k) => raw(`${m}.experts.${e}.${k}.weight`))));
  return {
    w13: (e, row, h) => (row < I ? element(experts.get(e)![0]!, [row, h]) : element(experts.get(e)![1]!, [row - I, h])),
    w2: (e, h, i) => element(experts.get(e)![2]!, [h, i]),
  };
}

describe.each(fixtures)('golden %s', (fixture) => {
  const dirs: Record<'original' | 'fused', CheckpointDir> = {} as never;
  // The MoE layers as transformers built them (golden.json), not as the registry reads them.
  const moeLayers = Object.keys((JSON.parse(readFileSync(join(GOLDEN, fixture, 'golden.json'), 'utf8')) as { moe_layers: Record<string, string> }).moe_layers).map(Number);
  const first = moeLayers[0]!;
  let whole: Canonical;
  beforeAll(async () => {
    dirs.original = await CheckpointDir.open(join(GOLDEN, fixture, 'original'));
    dirs.fused = await CheckpointDir.open(join(GOLDEN, fixture, 'fused'));
    whole = await load(dirs.original, WHOLE);
  });
  afterAll(async () => {
    await dirs.original.close();
    await dirs.fused.close();
  });

  it('detection names each folder\'s layout for every MoE layer', () => {
    const original = detect(dirs.original);
    const fused = detect(dirs.fused);
    // One layout where transformers has no conversion for the type: both folders hold the same keys.
    const table = (d: CheckpointDir) => [...d.tensorNames()].sort().map((n) => `${n}${JSON.stringify(d.info(n).shape)}`).join();
    const identical = table(dirs.original) === table(dirs.fused);
    expect(identical).toBe(['gpt_oss', 'llama4_text', 'dbrx', 'mistral4', 'jetmoe', 'granitemoe_swa', 'aria_text', 'llama4', 'gemma4_text', 'inkling_text', 'openai_privacy_filter', 'zaya', 'doge'].includes(original.modelType));
    expect(original.layers.map((l) => [l.layer, l.layout, l.layoutsIdentical])).toEqual(moeLayers.map((l) => [l, 'original', identical]));
    expect(fused.layers.map((l) => [l.layer, l.layout])).toEqual(moeLayers.map((l) => [l, identical ? 'original' : 'fused']));
  });

  it('original/ and fused/ load to byte-identical canonical tensors', async () => {
    expectSameCanonical(whole, await load(dirs.fused, WHOLE));
    // doge's single-neuron experts (I 1) allow TP 1 only.
    const split = { tpSize: fixture.startsWith('doge-') ? 1 : 2, tpRank: fixture.startsWith('doge-') ? 0 : 1, epSize: 3, epRank: 2, epPlacement: 'round_robin' as const };
    expectSameCanonical(await load(dirs.original, split), await load(dirs.fused, split));
  });

  it('whole w13 and w2 equal an independent derivation from the stored tensors, in both layouts', async () => {
    const type = fixture.replace(/-(f32|bf16)$/, '');
    for (const layout of ['original', 'fused'] as const) {
      const loaded = await load(dirs[layout], WHOLE);
      for (const layer of moeLayers) {
        const w13 = loaded.get(`layers.${layer}.experts.w13`)!;
        const w2 = loaded.get(`layers.${layer}.experts.w2`)!;
        const [E, twoI, H] = w13.shape as [number, number, number];
        const o = await oracle(dirs[layout], type, layer, w2.shape[2]!);
        const wrong: string[] = [];
        for (let e = 0; e < E; e++)
          for (let row = 0; row < twoI; row++)
            for (let h = 0; h < H; h++) if (element(w13, [e, row, h]) !== o.w13(e, row, h)) wrong.push(`${layout} layer ${layer} w13[${e}][${row}][${h}]`);
        for (let e = 0; e < E; e++)
          for (let h = 0; h < H; h++)
            for (let i = 0; i < w2.shape[2]!; i++) if (element(w2, [e, h, i]) !== o.w2(e, h, i)) wrong.push(`${layout} layer ${layer} w2[${e}][${h}][${i}]`);
        expect(wrong.slice(0, 5)).toEqual([]);
      }
    }
  });

  it('TP 1, 2, 4, 5 and EP 1, 2, 3 (both placements) reassemble the whole; TP 3 and TP 5 refused where they do not divide', async () => {
    const layout = fixture.endsWith('f32') ? dirs.original : dirs.fused;
    const shared = whole.get(`layers.${first}.shared.w2`)?.shape[1] ?? 0;
    const I = whole.get(`layers.${first}.experts.w2`)!.shape[2]!;
    for (const T of [3, 5]) {
      if (I % T === 0 && shared % T === 0) continue;
      await expect(planLoad(layout, { ...WHOLE, tpSize: T })).rejects.toThrow(InvalidParallelRequest);
    }
    // Every TP size alone, every EP split alone, and mixed splits of each placement.
    const splits: Array<[number, number, EpPlacement]> = [
      [2, 1, 'linear'],
      [4, 1, 'linear'],
      [5, 1, 'linear'],
      [1, 3, 'linear'],
      [1, 3, 'round_robin'],
      [2, 3, 'linear'],
      [2, 2, 'round_robin'],
      [4, 2, 'round_robin'],
      [5, 2, 'linear'],
    ];
    for (const [T, P, placement] of splits) {
      if (shared % T !== 0 || I % T !== 0) {
        await expect(planLoad(layout, { tpSize: T, tpRank: 0, epSize: P, epRank: 0, epPlacement: placement })).rejects.toThrow(InvalidParallelRequest);
        continue;
      }
      const ranks: Array<{ r: number; c: Canonical }> = [];
      for (let r = 0; r < T; r++) for (let q = 0; q < P; q++) ranks.push({ r, c: await load(layout, { tpSize: T, tpRank: r, epSize: P, epRank: q, epPlacement: placement }) });
      expectSameCanonical(whole, reassemble(ranks, T, !fixture.startsWith('nemotron_h-')));
    }
  });
});

/** Put TP shards and EP slots back together, checking every expert id appears once per TP rank. */
function reassemble(ranks: Array<{ r: number; c: Canonical }>, T: number, gated: boolean): Canonical {
  const out: Canonical = new Map();
  const first = ranks[0]!.c;
  for (const name of first.keys()) {
    // layers.L.group.what, or layers.L.what for a block-wide tensor (jetmoe's output_bias).
    // zaya's MLP router has dotted names (router.down.weight): whole on every rank.
    const [, layer, group, what] = /^layers\.(\d+)\.(?:(\w+)\.)?([\w.]+)$/.exec(name)!;
    const dtype = first.get(name)!.dtype;
    if (group === 'experts') {
      if (what === 'ids') continue;
      const perExpert = new Map<number, Tensor[]>();
      for (const { r, c } of ranks) {
        const ids = Array.from(new Int32Array(c.get(`layers.${layer}.experts.ids`)!.bytes.slice().buffer));
        const t = c.get(name)!;
        const per = t.bytes.length / Math.max(1, t.shape[0]!);
        ids.forEach((id, slot) => {
          const list = perExpert.get(id) ?? [];
          expect(list[r], `expert ${id} twice on TP rank ${r}`).toBeUndefined();
          list[r] = { dtype, shape: t.shape.slice(1), bytes: t.bytes.subarray(slot * per, (slot + 1) * per) };
          perExpert.set(id, list);
        });
      }
      const E = perExpert.size;
      const parts = Array.from({ length: E }, (_, e) => joinTp(perExpert.get(e)!, what!, T, gated));
      out.set(name, { dtype, shape: [E, ...parts[0]!.shape], bytes: Buffer.concat(parts.map((p) => p.bytes)) });
      out.set(`layers.${layer}.experts.ids`, { dtype: 'I32', shape: [E], bytes: new Uint8Array(new Int32Array(Array.from({ length: E }, (_, i) => i)).buffer) });
    } else {
      const shards = Array.from({ length: T }, (_, r) => ranks.find((x) => x.r === r)!.c.get(name)!);
      out.set(name, joinTp(shards, `${group}.${what}`, T, gated));
    }
  }
  return out;
}

/** Join one tensor's TP shards: w13 cuts gate and up separately, w2 cuts columns, the rest is whole. */
function joinTp(shards: Tensor[], what: string, T: number, gated: boolean): Tensor {
  const s0 = shards[0]!;
  if (!gated && (what === 'w13' || what === 'shared.w13')) {
    // Non-gated (nemotron_h): up rows only, each rank a contiguous slice.
    return { dtype: s0.dtype, shape: [s0.shape[0]! * T, ...s0.shape.slice(1)], bytes: Buffer.concat(shards.map((s) => s.bytes)) };
  }
  if (what === 'w13' || what === 'w13_bias' || what === 'shared.w13') {
    // rows (or elements) [0, n/2) are gate, [n/2, n) are up, on every shard.
    const half = s0.bytes.length / 2;
    const gate = Buffer.concat(shards.map((s) => s.bytes.subarray(0, half)));
    const up = Buffer.concat(shards.map((s) => s.bytes.subarray(half)));
    return { dtype: s0.dtype, shape: [s0.shape[0]! * T, ...s0.shape.slice(1)], bytes: Buffer.concat([gate, up]) };
  }
  if (what === 'w2' || what === 'shared.w2') {
    const [H, cols] = s0.shape as [number, number];
    const rowBytes = s0.bytes.length / H;
    const rows = Array.from({ length: H }, (_, h) => Buffer.concat(shards.map((s) => s.bytes.subarray(h * rowBytes, (h + 1) * rowBytes))));
    return { dtype: s0.dtype, shape: [H, cols * T], bytes: Buffer.concat(rows) };
  }
  for (const s of shards) expect(Buffer.compare(Buffer.from(s.bytes), Buffer.from(s0.bytes)), `${what} identical on every TP rank`).toBe(0);
  return s0;
}
