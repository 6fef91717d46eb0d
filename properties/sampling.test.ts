// Case sampling guarantees coverage per run (issue 18): every model type in each of its
// layouts, a refusal of a broken checkpoint of every type (the defects taking turns), and
// every invalid request; a short run spreads over the types before it repeats one.
import { describe, expect, it } from 'vitest';
import { ALL_MODEL_TYPES } from './arbitraries/models.js';
import { breakagesFor } from './arbitraries/cases.js';
import { checkSpec, hasTwoLayouts } from './materialize.js';
import { BAD_REQUESTS, BREAKAGES, QUANT_DTYPE_NAMES, specIdText, type CaseSpec } from './spec.js';
import { coverageSpecs, defaultCaseCount, quantDtypesOf, quantizedSpecs, runSpecs, sampleSpecs } from './suite.js';
import { quantModelTypes } from './arbitraries/quantized.js';
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

describe('the CLI draws quantized cases for the quantized dtypes a run asks for or the loader declares', () => {
  it('each quantized dtype gets loads with a TP split and an EP split, both layouts agreeing and a quantized router to refuse', () => {
    for (const seed of [42, 7, 3]) {
      const specs = quantizedSpecs(seed, QUANT_DTYPE_NAMES);
      for (const d of QUANT_DTYPE_NAMES) {
        const of = specs.filter((s) => s.checkpoint.dtype === d);
        const loads = of.flatMap((s) => (s.kind === 'load' ? [s.parallel] : []));
        expect(loads.length, `${seed} ${d}`).toBeGreaterThanOrEqual(2);
        expect(loads.some((p) => p.tp > 1), `${seed} ${d}: a TP split`).toBe(true);
        expect(loads.some((p) => p.ep > 1), `${seed} ${d}: an EP split`).toBe(true);
        expect(of.some((s) => s.kind === 'layout'), `${seed} ${d}: both layouts`).toBe(true);
        expect(of.filter((s) => s.kind === 'refuse').map((s) => s.kind === 'refuse' && s.broken), `${seed} ${d}`).toEqual(['quantized-router']);
        for (const s of of) expect(quantModelTypes(d)).toContain(s.checkpoint.model.modelType);
      }
      for (const s of specs) expect(() => checkSpec(s), specIdText(s)).not.toThrow();
    }
  });
  it('keeps to the filter and to what the loader declares (model types, layouts, largest TP and EP), so the cases run rather than skip', () => {
    const specs = quantizedSpecs(42, ['fp8', 'mxfp4'], { modelTypes: ['mixtral', 'qwen3_moe', 'dbrx'] }, { modelTypes: ['mixtral', 'qwen3_moe'], layouts: ['fused'], maxTp: 2, maxEp: 2 });
    expect(new Set(specs.map((s) => s.checkpoint.dtype))).toEqual(new Set(['fp8', 'mxfp4']));
    for (const s of specs) {
      expect(['mixtral', 'qwen3_moe']).toContain(s.checkpoint.model.modelType);
      expect(s.checkpoint.layout).toBe('fused');
      expect(s.kind).not.toBe('layout');
      if (s.kind === 'load') expect(s.parallel.tp <= 2 && s.parallel.ep <= 2).toBe(true);
    }
  });
  it('which quantized dtypes: those --dtypes names, else those declared; none for a loader that declares none', () => {
    expect(quantDtypesOf(undefined, undefined)).toEqual([]);
    expect(quantDtypesOf(undefined, { modelTypes: ['mixtral'] })).toEqual([]);
    expect(quantDtypesOf(undefined, { dtypes: ['bf16', 'fp8-shared', 'fp8'] })).toEqual(['fp8', 'fp8-shared']);
    expect(quantDtypesOf(['f32', 'nvfp4'], { dtypes: ['fp8'] })).toEqual(['nvfp4']);
  });
  it('a run that asks for no quantized dtype is the float run it always was; one naming only quantized dtypes has no float cases', () => {
    const float = runSpecs({ seed: 42, quantized: [] });
    expect(float.map(specIdText)).toEqual(sampleSpecs(defaultCaseCount(42), 42).map(specIdText));
    const filter = { modelTypes: ['mixtral'], dtypes: ['bf16' as const] };
    expect(runSpecs({ seed: 7, filter, count: 9, quantized: [] }).map(specIdText)).toEqual(sampleSpecs(9, 7, filter).map(specIdText));
    const quantOnly = runSpecs({ seed: 42, filter: { dtypes: ['fp8'] }, count: 9, quantized: ['fp8'] });
    expect(quantOnly.length).toBeGreaterThan(0);
    expect(quantOnly.every((s) => s.checkpoint.dtype === 'fp8')).toBe(true);
    const both = runSpecs({ seed: 42, filter: { dtypes: ['bf16', 'fp8'] }, count: 9, quantized: ['fp8'] });
    expect(both.filter((s) => s.checkpoint.dtype === 'bf16')).toHaveLength(9);
    expect(both.filter((s) => s.checkpoint.dtype === 'fp8').map(specIdText)).toEqual(quantOnly.map(specIdText));
  });
});
