// Case sampling guarantees coverage per run (issue 18): every model type in each of its
// layouts, a refusal of a broken checkpoint of every type (the defects taking turns), and
// every invalid request; a short run spreads over the types before it repeats one.
import { describe, expect, it } from 'vitest';
import { ALL_MODEL_TYPES } from './arbitraries/models.js';
import { breakagesFor } from './arbitraries/cases.js';
import { checkSpec, hasTwoLayouts } from './materialize.js';
import { BAD_REQUESTS, BREAKAGES, specIdText, type CaseSpec } from './spec.js';
import { coverageSpecs, defaultCaseCount, sampleSpecs } from './suite.js';
import { suiteProperties } from './suite-properties.js';

const pairs = (specs: CaseSpec[], kind: CaseSpec['kind']) => new Set(specs.filter((s) => s.kind === kind).map((s) => `${s.checkpoint.model.modelType}/${s.checkpoint.layout}`));
const types = (specs: CaseSpec[], kind: CaseSpec['kind']) => new Set(specs.filter((s) => s.kind === kind).map((s) => s.checkpoint.model.modelType));

describe('sampling covers the loader’s model types and layouts', () => {
  it('the default check run (100 cases, or the coverage set where it is larger) loads every type in each of its layouts and refuses a broken checkpoint of every type', () => {
    const n = defaultCaseCount(42);
    expect(n).toBeGreaterThanOrEqual(100);
    const specs = sampleSpecs(n, 42);
    expect(specs).toHaveLength(n);
    const loads = pairs(specs, 'load');
    for (const t of ALL_MODEL_TYPES) {
      for (const l of hasTwoLayouts(t) ? ['original', 'fused'] : []) expect(loads.has(`${t}/${l}`), `${t}/${l}`).toBe(true);
      expect(types(specs, 'load').has(t), t).toBe(true);
    }
    expect([...ALL_MODEL_TYPES].filter((t) => !types(specs, 'refuse').has(t))).toEqual([]);
    // The defects and invalid requests are spread, not drawn at random onto a few.
    const defects = new Set(specs.flatMap((s) => (s.kind === 'refuse' ? [s.broken] : [])));
    // quantized-router is a defect of quantized checkpoints, drawn by the quantized families (arbitraries/quantized.ts).
    expect([...BREAKAGES].filter((b) => b !== 'quantized-router' && !defects.has(b))).toEqual([]);
    const bad = new Set(specs.flatMap((s) => (s.kind === 'request' ? [s.bad] : [])));
    expect([...BAD_REQUESTS].filter((b) => !bad.has(b))).toEqual([]);
    expect(coverageSpecs(42).length).toBeLessThanOrEqual(n);
  });
  it('every sampled case passes checkSpec (what a hand-edited --case ID is held to): the generator never makes an impossible case', () => {
    for (const seed of [42, 7, 3]) for (const spec of sampleSpecs(defaultCaseCount(seed), seed)) expect(() => checkSpec(spec), specIdText(spec)).not.toThrow();
  });

  it('a run of two cases per type still loads and refuses every type', () => {
    const specs = sampleSpecs(2 * ALL_MODEL_TYPES.length, 7);
    expect([...ALL_MODEL_TYPES].filter((t) => !types(specs, 'load').has(t))).toEqual([]);
    expect([...ALL_MODEL_TYPES].filter((t) => !types(specs, 'refuse').has(t))).toEqual([]);
  });
  it('a short run reaches as many types as it has cases, loads and refusals alike', () => {
    const specs = sampleSpecs(12, 3);
    expect(new Set(specs.map((s) => s.checkpoint.model.modelType)).size).toBe(12);
    expect(specs.filter((s) => s.kind === 'load')).toHaveLength(6);
    expect(specs.filter((s) => s.kind === 'refuse')).toHaveLength(6);
  });
  it('keeps to the loader’s declared types and layouts, with defects each type can have', () => {
    const specs = sampleSpecs(30, 3, { modelTypes: ['dbrx', 'qwen3_moe'], layouts: ['fused'] });
    expect(new Set(specs.map((s) => s.checkpoint.model.modelType))).toEqual(new Set(['dbrx', 'qwen3_moe']));
    expect(new Set(specs.map((s) => s.checkpoint.layout))).toEqual(new Set(['fused']));
    expect(types(specs, 'refuse')).toEqual(new Set(['dbrx', 'qwen3_moe']));
    for (const s of specs) if (s.kind === 'refuse') expect(breakagesFor(s.checkpoint.model.modelType)).toContain(s.broken);
  });
  it('the vitest suite refuses a broken checkpoint of every declared type and asks every invalid request, every run', () => {
    const props = suiteProperties({ name: 'x', load: async () => new Map(), capabilities: { modelTypes: ['mixtral', 'dbrx', 'olmoe'], layouts: ['fused'] }, seed: 1 });
    const refuse = props.find((p) => p.title === 'broken checkpoints are refused')!;
    expect(types(refuse.examples!, 'refuse')).toEqual(new Set(['mixtral', 'dbrx', 'olmoe']));
    expect(refuse.examples!.every((s) => s.checkpoint.layout === 'fused')).toBe(true);
    const request = props.find((p) => p.title === 'invalid requests are refused')!;
    expect(new Set(request.examples!.map((s) => (s.kind === 'request' ? s.bad : '')))).toEqual(new Set(BAD_REQUESTS));
  });
});
