import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { caseArb } from './arbitraries/cases.js';
import { ALL_MODEL_TYPES, MODEL_TRAITS } from './arbitraries/models.js';
import { modelSpecArb } from './arbitraries/dims.js';
import { validParallelArb } from './arbitraries/parallel.js';
import { MODEL_TYPES } from '../harness/layouts/registry.js';
import { CaseSpecError, parseSpec, specIdText, specSeed } from './spec.js';

const seed = Number(process.env.FC_SEED ?? 42);

describe('case specs', () => {
  it('print and parse back to the same case, for every kind', () => {
    fc.assert(
      fc.property(caseArb(), (spec) => {
        const id = specIdText(spec);
        expect(specIdText(parseSpec(id))).toBe(id);
        expect(parseSpec(id)).toEqual(spec.kind === 'layout' ? { ...spec, checkpoint: { ...spec.checkpoint, layout: 'original' } } : spec);
      }),
      { seed, numRuns: 200 },
    );
  });

  it('refuse IDs that are not generated cases or have bad parameters', () => {
    const good = 'moe:load:model=mixtral;layout=fused;dtype=f32;e=2;h=4;i=2;is=0;k=1;g=1;tg=1;layers=1;shards=single;tp=1;ep=1;placement=linear';
    expect(() => parseSpec(good)).not.toThrow();
    for (const bad of [
      'moe:golden:fixture=x',
      good.replace('dtype=f32', 'dtype=f8'),
      good.replace('e=2', 'e=two'),
      good.replace('shards=single', 'shards=many'),
      good.replace(';placement=linear', ''),
      good.replace('model=mixtral;layout=fused', 'layout=fused;model=mixtral'),
      `${good};extra=1`,
    ]) {
      expect(() => parseSpec(bad), bad).toThrow(CaseSpecError);
    }
  });

  it('seed the weights from the model and dtype only', () => {
    const a = parseSpec('moe:load:model=mixtral;layout=fused;dtype=f32;e=2;h=4;i=2;is=0;k=1;g=1;tg=1;layers=1;shards=single;tp=1;ep=1;placement=linear');
    const b = parseSpec('moe:refuse:model=mixtral;layout=original;dtype=f32;e=2;h=4;i=2;is=0;k=1;g=1;tg=1;layers=1;shards=scatter-2;broken=wrong-shape');
    const c = parseSpec('moe:load:model=mixtral;layout=fused;dtype=bf16;e=2;h=4;i=2;is=0;k=1;g=1;tg=1;layers=1;shards=single;tp=1;ep=1;placement=linear');
    expect(specSeed(a)).toBe(specSeed(b));
    expect(specSeed(a)).not.toBe(specSeed(c));
  });
});

describe('arbitraries', () => {
  it('give every missing-shard case an index to name the missing file', () => {
    const missing = fc.sample(caseArb({ kinds: ['refuse'] }), { seed, numRuns: 300 }).filter((s) => s.kind === 'refuse' && s.broken === 'missing-shard');
    expect(missing.length).toBeGreaterThan(0);
    expect(missing.every((s) => s.checkpoint.shards.kind === 'scatter')).toBe(true);
  });

  it('ask a loader of one layout for no layout-invariance case', () => {
    const kinds = new Set(fc.sample(caseArb({ layouts: ['fused'] }), { seed, numRuns: 100 }).map((s) => s.kind));
    expect(kinds).toEqual(new Set(['load', 'refuse', 'request']));
    expect(() => caseArb({ layouts: ['fused'], kinds: ['layout'] })).toThrow(CaseSpecError);
  });

  it('cover exactly the registry\'s model types', () => {
    expect([...ALL_MODEL_TYPES].sort()).toEqual([...MODEL_TYPES].sort());
    expect(Object.keys(MODEL_TRAITS)).toEqual([...MODEL_TYPES]);
  });

  it('draw sizes each model type can express, with the edge cases present', () => {
    const seen = { h2i: 0, iEqH: 0, oneExpert: 0, manyExperts: 0, topkAll: 0, loopCap: 0 };
    for (const [i, modelType] of ALL_MODEL_TYPES.entries()) {
      for (const m of fc.sample(modelSpecArb(modelType), { seed: seed + i, numRuns: 60 })) {
        expect(m.topK).toBeGreaterThanOrEqual(1);
        expect(m.topK).toBeLessThanOrEqual(m.experts);
        expect(m.experts % m.groups).toBe(0);
        expect(m.topkGroups).toBeLessThanOrEqual(m.groups);
        expect(m.topK).toBeLessThanOrEqual((m.topkGroups * m.experts) / m.groups);
        if (m.hidden === 2 * m.intermediate) seen.h2i++;
        if (m.hidden === m.intermediate) seen.iEqH++;
        if (m.experts === 1) seen.oneExpert++;
        if (m.experts >= 11) seen.manyExperts++;
        if (m.topK === m.experts && m.experts > 1) seen.topkAll++;
        if (m.hidden > 1000 || m.intermediate > 1000) seen.loopCap++;
      }
    }
    for (const [edge, n] of Object.entries(seen)) expect(n, edge).toBeGreaterThan(0);
  });

  it('draw valid parallel settings: TP divides I and Is, EP within E, and E % P != 0 among them', () => {
    let remainder = 0;
    fc.assert(
      fc.property(modelSpecArb('qwen2_moe').chain((m) => fc.tuple(fc.constant(m), validParallelArb(m))), ([m, p]) => {
        expect(m.intermediate % p.tp).toBe(0);
        expect(m.sharedIntermediate % p.tp).toBe(0);
        expect(p.ep).toBeLessThanOrEqual(m.experts);
        if (m.experts % p.ep !== 0) remainder++;
      }),
      { seed, numRuns: 200 },
    );
    expect(remainder).toBeGreaterThan(0);
    expect(fc.sample(validParallelArb({ modelType: 'mixtral', experts: 1, hidden: 4, intermediate: 3, sharedIntermediate: 0, topK: 1, groups: 1, topkGroups: 1, layers: 1 }, { tpSizes: [2], epSizes: [4] }), { seed, numRuns: 5 })).toEqual(
      Array(5).fill(expect.objectContaining({ tp: 1, ep: 1 })),
    );
  });
});
