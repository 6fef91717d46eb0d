// The writer against transformers (golden fixtures: our MoE tensors equal theirs, key for
// key) and against the loader (write then load is the identity for random weights of all
// every registered model type, both layouts, three dtypes, random shard plans and key orders).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CheckpointDir } from '../checkpoint/directory.js';
import { ModelConfig } from '../checkpoint/config.js';
import { detect } from '../loader/detect.js';
import { entryFor, MODEL_TYPES, type LayoutName } from '../layouts/registry.js';
import { loadCanonical, materialize, planLoad } from '../loader/load.js';
import type { DType } from '../safetensors/dtypes.js';
import { WHOLE, type Canonical } from '../tensor.js';
import { buildConfig, sharedSizeRule } from './config.js';
import { randomCanonical } from '../canonical/random.js';
import { storedTensors, writeMoeCheckpoint } from './write-checkpoint.js';
import { WriterInputError } from './errors.js';

const seed = Number(process.env.FC_SEED ?? 42);
const GOLDEN = join(import.meta.dirname, '../../golden/hf');
const fixtures = readdirSync(GOLDEN, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
const scratch = mkdtempSync(join(tmpdir(), 'moe-writer-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function expectSameTensors(a: Canonical, b: Canonical, what: string): void {
  expect([...a.keys()].sort(), what).toEqual([...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect({ name, dtype: u.dtype, shape: u.shape }, what).toEqual({ name, dtype: t.dtype, shape: t.shape });
    expect(Buffer.compare(Buffer.from(t.bytes), Buffer.from(u.bytes)), `${what}: ${name}`).toBe(0);
  }
}

/**
 * longcat_flash stores weights its model never uses (spec/layouts.md): the zero-compute
 * experts' gate/up (experts E.. of gate_up_proj, or experts.{e >= E}.*) and the router's
 * classifier.bias. They are no canonical tensor, so the writer writes them as zeros.
 */
function deadZeroed(c: Canonical, E: number): Canonical {
  const out: Canonical = new Map();
  for (const [name, t] of c) {
    const id = /\.experts\.(\d+)\./.exec(name);
    const zero = (from: number) => {
      const bytes = t.bytes.slice();
      bytes.fill(0, from);
      return { ...t, bytes };
    };
    if (name.endsWith('router.classifier.bias') || (id && Number(id[1]) >= E)) out.set(name, zero(0));
    else if (name.endsWith('experts.gate_up_proj')) out.set(name, zero((t.bytes.length / t.shape[0]!) * E));
    else out.set(name, t);
  }
  return out;
}

describe.each(fixtures)('writing golden %s back', (fixture) => {
  it('gives transformers\' own MoE tensors in both layouts (names, shapes, dtypes, bytes)', async () => {
    const whole = await loadCanonical(join(GOLDEN, fixture, 'original'), WHOLE);
    for (const layout of ['original', 'fused'] as const) {
      const dir = await CheckpointDir.open(join(GOLDEN, fixture, layout));
      try {
        const ours = storedTensors({ config: dir.config, layout, canonical: whole });
        const theirs: Canonical = new Map();
        for (const layer of detect(dir).layers) for (const name of layer.tensors) theirs.set(name, await dir.read(name));
        expectSameTensors(fixture.startsWith('longcat_flash-') ? deadZeroed(theirs, dir.config.int('n_routed_experts')) : theirs, ours, `${fixture}/${layout}`);
      } finally {
        await dir.close();
      }
    }
  });
});

// ---- write then load, for random weights ----

const dtypes: DType[] = ['F32', 'F16', 'BF16'];
const configDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

const caseArb = fc
  .record({
    modelType: fc.constantFrom(...MODEL_TYPES),
    layout: fc.constantFrom<LayoutName>('original', 'fused'),
    dtype: fc.constantFrom(...dtypes),
    experts: fc.integer({ min: 1, max: 12 }),
    hidden: fc.integer({ min: 1, max: 6 }),
    intermediate: fc.integer({ min: 1, max: 5 }),
    sharedFactor: fc.integer({ min: 1, max: 3 }),
    layers: fc.integer({ min: 1, max: 3 }),
    weightSeed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    files: fc.integer({ min: 1, max: 4 }),
    shuffle: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .map((c) => {
    const rule = sharedSizeRule(c.modelType);
    // zaya's generator fixes top-1 (the only k transformers builds).
    // doge: single-neuron experts (I 1), product keys reaching floor(√E)² experts.
    const g = entryFor(c.modelType).generator;
    const intermediate = g.intermediate ?? c.intermediate;
    const shared = rule === 'none' ? 0 : rule === 'equals_I' ? intermediate : c.intermediate * c.sharedFactor;
    return { ...c, intermediate, sharedIntermediate: shared, topK: Math.min(g.topK === 1 ? 1 : 2, c.experts, g.maxTopK?.(c.experts) ?? 2) };
  });

describe('write then load', () => {
  it('is the identity for random weights of every model type, layout and dtype, any shard plan and key order', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const raw = buildConfig(c, configDtype[c.dtype as 'F32']);
        const config = new ModelConfig(raw);
        const dims = entryFor(c.modelType).dims(config);
        expect({ E: dims.experts, H: dims.hidden, I: dims.intermediate, Is: dims.sharedIntermediate, k: dims.topK, layers: dims.moeLayers }).toEqual({
          E: c.experts,
          H: c.hidden,
          I: c.intermediate,
          Is: c.sharedIntermediate,
          k: c.topK,
          layers: Array.from({ length: c.layers }, (_, i) => i),
        });
        const canonical = randomCanonical(dims, c.dtype, c.weightSeed);
        const dir = join(scratch, `case-${n++}`);
        const keys = [...storedTensors({ config, layout: c.layout, canonical }).keys()];
        const assignment = new Map(keys.map((k, i) => [k, (i * 7 + c.shuffle) % c.files]));
        await writeMoeCheckpoint(dir, {
          config,
          layout: c.layout,
          canonical,
          plan: { assignment, files: c.files },
          order: (ks) => ks.map((k, i) => [k, (i * 2654435761 + c.shuffle) % 4294967296] as const).sort((a, b) => a[1] - b[1]).map(([k]) => k),
        });
        const checkpoint = await CheckpointDir.open(dir);
        try {
          const found = detect(checkpoint);
          expect(found.layers.map((l) => l.layout)).toEqual(found.layers.map((l) => (l.layoutsIdentical ? 'original' : c.layout)));
          expectSameTensors(canonical, await materialize(await planLoad(checkpoint, WHOLE)), `${c.modelType}/${c.layout}/${c.dtype}`);
        } finally {
          await checkpoint.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { seed, numRuns: 30 },
    );
  });

  it('covers every registered model type in both layouts, deterministically from the seed', async () => {
    for (const modelType of MODEL_TYPES) {
      for (const layout of ['original', 'fused'] as const) {
        const rule = sharedSizeRule(modelType);
        const sizes = { modelType, experts: 12, hidden: 6, intermediate: 4, sharedIntermediate: rule === 'none' ? 0 : rule === 'equals_I' ? 4 : 8, topK: 2, layers: 2 };
        const config = new ModelConfig(buildConfig(sizes, 'bfloat16'));
        const dims = entryFor(modelType).dims(config);
        const canonical = randomCanonical(dims, 'BF16', 7);
        expectSameTensors(canonical, randomCanonical(dims, 'BF16', 7), 'same seed, same weights');
        const dir = join(scratch, `${modelType}-${layout}`);
        await writeMoeCheckpoint(dir, { config, layout, canonical, plan: { maxShardBytes: 1000 } });
        expectSameTensors(canonical, await loadCanonical(dir, WHOLE), `${modelType}/${layout}`);
      }
    }
  });
});

describe('zero-size shared experts', () => {
  it('qwen2_moe with Is = 0 keeps its (empty) shared expert and its gate, as transformers does', async () => {
    const config = new ModelConfig(buildConfig({ modelType: 'qwen2_moe', experts: 4, hidden: 6, intermediate: 4, sharedIntermediate: 0, topK: 2, layers: 1 }, 'float32'));
    const canonical = randomCanonical(entryFor('qwen2_moe').dims(config), 'F32', 5);
    expect(canonical.get('layers.0.shared.w13')!.shape).toEqual([0, 6]);
    expect(canonical.get('layers.0.shared.gate')!.shape).toEqual([1, 6]);
    const dir = join(scratch, 'qwen2-empty-shared');
    await writeMoeCheckpoint(dir, { config, layout: 'original', canonical });
    const checkpoint = await CheckpointDir.open(dir);
    expect(checkpoint.info('model.layers.0.mlp.shared_expert.down_proj.weight').shape).toEqual([6, 0]);
    await checkpoint.close();
    expectSameTensors(canonical, await loadCanonical(dir, WHOLE), 'qwen2_moe Is = 0');
    const tp4 = await loadCanonical(dir, { tpSize: 4, tpRank: 3, epSize: 1, epRank: 0, epPlacement: 'linear' });
    expect(tp4.get('layers.0.shared.w2')!.shape).toEqual([6, 0]);
  });
});

describe('the writer refuses canonical weights that do not fit', () => {
  const sizes = { modelType: 'qwen2_moe', experts: 4, hidden: 6, intermediate: 4, sharedIntermediate: 4, topK: 2, layers: 1 };
  const config = new ModelConfig(buildConfig(sizes, 'float32'));
  const fresh = () => randomCanonical(entryFor('qwen2_moe').dims(config), 'F32', 3);
  const attempt = (canonical: Canonical) => () => storedTensors({ config, layout: 'fused', canonical });

  it('a missing or mis-shaped canonical tensor, or ids other than 0..E-1', () => {
    const missing = fresh();
    missing.delete('layers.0.shared.gate');
    expect(attempt(missing)).toThrow(WriterInputError);
    const shape = fresh();
    shape.set('layers.0.experts.w2', { ...shape.get('layers.0.experts.w2')!, shape: [4, 4, 6] });
    expect(attempt(shape)).toThrow(/wrong shape/);
    const ids = fresh();
    ids.set('layers.0.experts.ids', { dtype: 'I32', shape: [4], bytes: new Uint8Array(new Int32Array([0, 1, 3, 2]).buffer) });
    expect(attempt(ids)).toThrow(/experts\.ids/);
  });
  it('an extra tensor under the name of an MoE tensor', async () => {
    const canonical = fresh();
    const extra = new Map([['model.layers.0.mlp.gate.weight', canonical.get('layers.0.router.weight')!]]);
    await expect(writeMoeCheckpoint(join(scratch, 'clash'), { config, layout: 'fused', canonical, extra })).rejects.toThrow(WriterInputError);
    const ok = new Map([['model.embed_tokens.weight', { dtype: 'F32' as const, shape: [2, 6], bytes: new Uint8Array(48) }]]);
    await writeMoeCheckpoint(join(scratch, 'extra'), { config, layout: 'fused', canonical, extra: ok });
    const dir = await CheckpointDir.open(join(scratch, 'extra'));
    expect(dir.has('model.embed_tokens.weight')).toBe(true);
    await dir.close();
  });
});
