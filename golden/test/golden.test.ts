// Every golden fixture made by transformers, through the reference loader and the float64
// reference forward, on both layouts and every allowed TP/EP split; and the same pipeline
// on deliberately broken canonical tensors, which must fail with a report that points at
// the broken expert.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WHOLE, type Canonical, type Loader } from '../../harness/tensor.js';
import { writeMoeCheckpoint } from '../../harness/writer/write-checkpoint.js';
import { referenceLoader } from '../../harness/loader/load.js';
import { ModelConfig } from '../../harness/checkpoint/config.js';
import { semanticsOf } from '../../harness/quant/layout.js';
import { referenceBackend, referenceForward } from '../../kernels/moe.js';
import { route } from '../../kernels/routing.js';
import type { MoeBackend } from '../../kernels/backend.js';
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import { DEFAULT_SPLITS, defaultGoldenRoot, discoverFixtures, GoldenFixtureError, readGolden, runGolden, splitAllowed, type GoldenRow } from '../golden.js';
import { MoeConformanceError } from '../../harness/errors.js';

const describeRow = (r: GoldenRow) => `${r.fixture} ${r.layout} ${r.split} ${r.backend}: ${r.tier} ${r.error ?? r.layers.map((l) => l.output.notes.join('; ')).join(' | ')}`;

describe('golden fixtures with the reference', () => {
  it('every fixture, layout and allowed split matches transformers within the float32 bound', async () => {
    const fixtures = await discoverFixtures();
    expect(fixtures.length).toBeGreaterThanOrEqual(24);
    let expectedRows = 0;
    for (const f of fixtures) {
      for (const l of f.layouts) {
        const sem = semanticsOf(await ModelConfig.read(l.dir));
        expectedRows += DEFAULT_SPLITS.filter((s) => splitAllowed(sem, s)).length;
      }
    }
    const rows = await runGolden({ fixtures, backends: [referenceBackend] });
    expect(rows.filter((r) => r.tier !== 'pass').map(describeRow)).toEqual([]);
    expect(rows.length).toBe(expectedRows);
    expect(new Set(rows.map((r) => `${r.fixture}/${r.layout}`)).size).toBe(fixtures.length * 2);
    expect(new Set(rows.map((r) => r.split)).size).toBe(DEFAULT_SPLITS.length);
    expect(rows.every((r) => r.layers.length >= 1 && r.layers.every((l) => l.output.elements > 0))).toBe(true);
    // 86 folders × 2 layouts × 5 splits through the float64 reference: minutes on a busy 2-core machine.
  }, 600_000);
});

/** Swaps the gate and up halves of expert `expert`'s w13 in every rank that holds it. */
function swapGateUp(c: Canonical, expert: number): Canonical {
  const out = new Map(c);
  for (const [name, ids] of c) {
    if (!name.endsWith('.experts.ids')) continue;
    const prefix = name.slice(0, -'ids'.length);
    const w13 = c.get(`${prefix}w13`)!;
    const slot = Array.from(new Int32Array(ids.bytes.slice().buffer)).indexOf(expert);
    if (slot < 0) continue;
    const [, twoRows, H] = w13.shape as [number, number, number];
    const rowBytes = (w13.bytes.length / w13.shape.reduce((a, b) => a * b, 1)) * H;
    const half = (twoRows / 2) * rowBytes;
    const bytes = w13.bytes.slice();
    const start = slot * twoRows * rowBytes;
    bytes.set(w13.bytes.subarray(start + half, start + 2 * half), start);
    bytes.set(w13.bytes.subarray(start, start + half), start + half);
    out.set(`${prefix}w13`, { ...w13, bytes });
  }
  return out;
}

describe('broken weights fail', () => {
  const broken = (expert: number): Loader => ({ name: 'swapped-gate-up', load: async (dir, req) => swapGateUp(await referenceLoader.load(dir, req), expert) });

  it.each(['mixtral-f32', 'gpt_oss-bf16', 'qwen2_moe-bf16'])('%s with one expert\'s gate and up swapped fails, naming that expert', async (name) => {
    const fixtures = await discoverFixtures(join(defaultGoldenRoot(), name));
    const rows = await runGolden({
      fixtures, backends: [referenceBackend], loader: broken(3), layouts: ['original'],
      splits: [{ tp: 1, ep: 1, placement: 'linear' }, { tp: 2, ep: 3, placement: 'round_robin' }],
    });
    expect(rows.length).toBe(2);
    for (const row of rows) {
      expect(row.tier, describeRow(row)).toBe('fail');
      const failing = row.layers.filter((l) => l.output.tier === 'fail');
      expect(failing.length).toBeGreaterThan(0);
      for (const l of failing) {
        const [worst] = [...l.output.perExpert].sort((a, b) => b[1] - a[1]);
        expect(worst?.[0]).toBe(3);
        expect(l.output.failures).toBeGreaterThan(0);
        expect(l.output.perRank.size).toBeGreaterThan(0);
      }
    }
  });

  describe('in a written checkpoint', () => {
    const dirs: string[] = [];
    afterAll(async () => {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    });
    // The fixture's weights written back in the fused layout, with or without the swap;
    // the recorded golden output stays the fixture's.
    async function rewritten(swap: boolean): Promise<GoldenRow[]> {
      const [fixture] = await discoverFixtures(join(defaultGoldenRoot(), 'mixtral-f32'));
      const source = fixture!.layouts[0]!.dir;
      const whole = await referenceLoader.load(source, WHOLE);
      const dir = await mkdtemp(join(tmpdir(), 'golden-swap-'));
      dirs.push(dir);
      await writeMoeCheckpoint(dir, { config: await ModelConfig.read(source), layout: 'fused', canonical: swap ? swapGateUp(whole, 3) : whole });
      return runGolden({
        fixtures: [{ ...fixture!, layouts: [{ layout: 'fused', dir }] }], backends: [referenceBackend],
        splits: [{ tp: 2, ep: 2, placement: 'round_robin' }],
      });
    }
    it('unchanged weights written again still pass (the control)', async () => {
      expect((await rewritten(false)).map((r) => r.tier)).toEqual(['pass']);
    });
    it('swapped gate and up of expert 3 fail', async () => {
      const [row] = await rewritten(true);
      expect(row!.tier).toBe('fail');
      expect(row!.layers.some((l) => [...l.output.perExpert].sort((a, b) => b[1] - a[1])[0]?.[0] === 3)).toBe(true);
    });
  });

  it('a loader that refuses makes the rows fail with its reason; a crash is not swallowed', async () => {
    const fixtures = await discoverFixtures(join(defaultGoldenRoot(), 'olmoe-f32'));
    class Refused extends MoeConformanceError {}
    const refusing: Loader = { name: 'refusing', load: async () => { throw new Refused('no such tensor', { tensor: 'x' }); } };
    const rows = await runGolden({ fixtures, backends: [referenceBackend], loader: refusing, layouts: ['fused'], splits: [{ tp: 1, ep: 1, placement: 'linear' }] });
    expect(rows).toMatchObject([{ tier: 'fail', error: expect.stringMatching(/Refused: no such tensor/) }]);
    const crashing: Loader = { name: 'crashing', load: async () => { throw new TypeError('bug'); } };
    await expect(runGolden({ fixtures, backends: [referenceBackend], loader: crashing, layouts: ['fused'] })).rejects.toThrow(TypeError);
  });

  it('refuses golden records that lack a layer or have the wrong shape', async () => {
    const [fixture] = await discoverFixtures(join(defaultGoldenRoot(), 'olmoe-f32'));
    const sem = semanticsOf(await ModelConfig.read(fixture!.layouts[0]!.dir));
    await expect(readGolden(fixture!, { ...sem, moeLayers: [...sem.moeLayers, 9] })).rejects.toThrow(/moe\.9\.input/);
    await expect(readGolden(fixture!, { ...sem, hidden: sem.hidden + 1 })).rejects.toThrow(GoldenFixtureError);
  });

  it('refuses a fixture whose golden.json is not JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'golden-bad-'));
    try {
      await mkdir(join(dir, 'original'));
      await writeFile(join(dir, 'golden.safetensors'), '');
      await writeFile(join(dir, 'golden.json'), '{"model_type": ');
      await writeFile(join(dir, 'original', 'config.json'), '{}');
      await expect(discoverFixtures(dir)).rejects.toThrow(GoldenFixtureError);
      // Valid JSON is not enough: an object with a model_type (null crashed the golden command), once (no repeated key),
      // and the folder named after it (the dtype a loader declares is read from the name).
      for (const [text, message] of [
        ['null', /golden\.json names no model_type \(expected an object with a model_type string, found null\)/],
        ['{"model_type": 3}', /names no model_type/],
        ['{"model_type": "mixtral", "model_type": "olmoe"}', /golden\.json is not valid JSON: .*model_type/],
        ['{"model_type": "mixtral"}', /not named after its model_type \(expected mixtral-<dtype>, found golden-bad-/],
      ] as const) {
        await writeFile(join(dir, 'golden.json'), text);
        await expect(discoverFixtures(dir), text).rejects.toThrow(message);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a folder without fixtures', async () => {
    await expect(discoverFixtures(join(defaultGoldenRoot(), 'mixtral-f32', 'original'))).rejects.toThrow(GoldenFixtureError);
    await expect(discoverFixtures(join(defaultGoldenRoot(), 'no-such-folder'))).rejects.toThrow(GoldenFixtureError);
  });
});

describe('engine bugs of the added semantics fail against transformers', () => {
  // A forward with one piece of the model's semantics dropped, as an engine that ignores it would compute.
  const dropping = (name: string, drop: (s: MoeSemantics) => MoeSemantics): MoeBackend => ({
    name,
    forward: (sem, layer, ranks, x, tokens) => referenceBackend.forward(drop(sem), layer, ranks, x, tokens),
  });
  // A forward whose routing is changed after the fact, as an engine that misreads it would compute.
  const rerouting = (name: string, change: (shared: Float64Array, S: number) => void): MoeBackend => ({
    name,
    forward: async (sem, layer, ranks, x, tokens) => referenceForward(sem, layer, ranks, x, tokens, {
      route: (...args: Parameters<typeof route>) => {
        const r = route(...args);
        if (r.sharedWeights) change(r.sharedWeights, sem.sharedRouted ?? 1);
        return r;
      },
    }),
  });
  const cases: Array<[string, string, MoeBackend]> = [
    ['clamped SwiGLU run without its limit (glm5_next)', 'glm5_next-f32', dropping('no-swiglu-limit', (s) => ({ ...s, activation: { kind: 'silu_gated' }, sharedActivation: { kind: 'silu_gated' } }))],
    ['zero-compute experts weighted as nothing (longcat_flash)', 'longcat_flash-bf16', dropping('no-zero-experts', (s) => ({ ...s, zeroExperts: 0 }))],
    ['cohere2_moe\'s average read as a sum', 'cohere2_moe-f32', dropping('sum-not-average', (s) => ({ ...s, sharedScale: 1, routing: { ...s.routing, scaling: 1 } as MoeSemantics['routing'] }))],
    ['step3p7\'s clamp taken before SiLU, not after', 'step3p7-f32', dropping('clamp-before', (s) => ({
      ...s,
      layerActivations: Object.fromEntries(Object.entries(s.layerActivations ?? {}).map(([l, a]) => [l, {
        activation: a.activation.kind === 'silu_clamped_after' ? { kind: 'silu_clamped', limit: a.activation.limit } : a.activation,
        ...(a.sharedActivation ? { sharedActivation: a.sharedActivation.kind === 'silu_clamped_after' ? { kind: 'silu_clamped', limit: a.sharedActivation.limit } : a.sharedActivation } : {}),
      }])),
    }))],
    ['step3p7\'s per-layer limits dropped', 'step3p7-bf16', dropping('no-layer-limits', (s) => { const { layerActivations: _, ...rest } = s; return rest; })],
    ['gemma4\'s per-expert output scales ignored', 'gemma4_text-f32', dropping('no-expert-scale', (s) => ({ ...s, expertOutputScale: false }))],
    ['gemma4\'s normalised router and expert inputs read as the block input', 'gemma4_text-bf16', dropping('no-input-norms', (s) => { const { inputNorms: _, ...rest } = s; return rest; })],
    ['gemma4\'s GeGLU run as SwiGLU', 'gemma4_text-f32', dropping('swiglu-not-geglu', (s) => ({ ...s, activation: { kind: 'silu_gated' } }))],
    ['inkling\'s route_scale dropped', 'inkling_text-f32', dropping('no-route-scale', (s) => ({ ...s, routing: { ...s.routing, scaling: 1 } as MoeSemantics['routing'] }))],
    ['inkling\'s stored global scale ignored', 'inkling_text-bf16', dropping('no-global-scale', (s) => ({ ...s, routerGlobalScale: false }))],
    // S router-weighted shared experts: each its own weight, not the first one's for all, nor their sum for each.
    ['inkling\'s shared experts all weighted by the first one\'s weight', 'inkling_text-f32', rerouting('first-shared-weight', (w, S) => w.forEach((_, i) => (w[i] = w[i - (i % S)]!)))],
    ['inkling\'s shared experts each weighted by the sum of their weights', 'inkling_text-bf16', rerouting('summed-shared-weights', (w, S) => {
      for (let t = 0; t < w.length; t += S) w.fill(w.subarray(t, t + S).reduce((a, b) => a + b, 0), t, t + S);
    })],
    ['minimax_m3_vl\'s shared expert run as plain SwiGLU', 'minimax_m3_vl-f32', dropping('shared-unclamped', (s) => ({ ...s, sharedActivation: { kind: 'silu_gated' } }))],
  ];
  it.each(cases)('%s', async (_what, fixture, backend) => {
    const fixtures = (await discoverFixtures()).filter((f) => f.name === fixture);
    expect(fixtures).toHaveLength(1);
    const rows = await runGolden({ fixtures, backends: [backend], layouts: ['fused'], splits: [DEFAULT_SPLITS[0]!] });
    expect(rows.length).toBe(1);
    expect(rows[0]!.tier).toBe('fail');
  });
});
