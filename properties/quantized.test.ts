// The quantized case family against the reference loader and kernels, and against loaders
// that get quantized checkpoints wrong: it must catch them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { referenceLoader } from '../harness/loader/load.js';
import { dequantizeCanonical } from '../harness/quant/dequantize.js';
import { quantSchemeOf } from '../harness/quant/scheme.js';
import { CheckpointDir } from '../harness/checkpoint/directory.js';
import type { Canonical, Loader } from '../harness/tensor.js';
import { referenceBackend } from '../kernels/moe.js';
import { checkSuiteProperty, ConformanceCaseFailure, defaultSeed, suiteProperties } from './suite-properties.js';
import { quantCaseArb } from './arbitraries/quantized.js';
import { QUANT_DTYPE_NAMES, specIdText } from './spec.js';
import { MUTANTS } from './mutants/catalogue.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCase } from './properties.js';
import { parseSpec } from './spec.js';

const quantizedProperties = (opts: { name: string; load: Loader }) => suiteProperties(opts).filter((p) => p.title.startsWith('quantized'));

/** The reference, then `mutate` applied to each rank's tensors. */
function mutant(name: string, mutate: (c: Canonical, dir: string, req: Parameters<Loader['load']>[1]) => Promise<Canonical> | Canonical): Loader {
  return { name, load: async (dir, req) => mutate(await referenceLoader.load(dir, req), dir, req) };
}

/** The first w13 scale row of the first expert taken from the next row (a scale cut one block off). */
const shiftedScales = mutant('w13 scale rows shifted', (c) => {
  const out = new Map(c);
  for (const [n, t] of c) {
    if (!n.endsWith('experts.w13_scale') || t.dtype !== 'F32') continue;
    const b = t.bytes.slice();
    const row = (t.shape[2] ?? 1) * 4;
    b.copyWithin(0, row, 2 * row); // first scale row of every first expert replaced by the second
    out.set(n, { ...t, bytes: b });
  }
  return out;
});

/** Scale tensors dropped: quantized weights passed on as if they were plain floats. */
const unscaled = mutant('scales dropped', (c) => {
  const out: Canonical = new Map();
  for (const [n, t] of c) if (!n.endsWith('_scale')) out.set(n, t);
  return out;
});

describe('the quantized case family', () => {
  it('draws every quantized dtype, with TP splits, in cases whose IDs parse back', () => {
    // 400 draws: the dtypes share them with every model type a format serves (50-odd); 200 left fp8 without a TP split at the default seed.
    const specs = fc.sample(quantCaseArb({}, QUANT_DTYPE_NAMES), { seed: defaultSeed(), numRuns: 400 });
    expect(new Set(specs.map((s) => s.checkpoint.dtype))).toEqual(new Set(QUANT_DTYPE_NAMES));
    for (const s of specs) expect(specIdText(s)).toContain(`dtype=${s.checkpoint.dtype}`);
    for (const d of ['fp8', 'nvfp4', 'fp8-ct-channel'] as const) expect(specs.some((s) => s.checkpoint.dtype === d && s.kind === 'load' && s.parallel.tp > 1), d).toBe(true);
    // NVFP4 ranks hold whole 16-element blocks of w2.
    for (const s of specs) if (s.checkpoint.dtype === 'nvfp4' && s.kind === 'load') expect((s.checkpoint.model.intermediate / s.parallel.tp) % 16).toBe(0);
    // MXFP4 beyond gpt_oss, in both layouts, its shared experts quantized too; ranks hold whole 32-element blocks.
    const mx = specs.filter((s) => s.checkpoint.dtype.startsWith('mxfp4'));
    expect(new Set(mx.map((s) => s.checkpoint.model.modelType)).size).toBeGreaterThan(2);
    expect(new Set(mx.map((s) => s.checkpoint.layout))).toEqual(new Set(['original', 'fused']));
    for (const s of mx) if (s.kind === 'load') expect((s.checkpoint.model.intermediate / s.parallel.tp) % 32).toBe(0);
  });

  it('the default suite has one quantized family per format', () => {
    const titles = quantizedProperties({ name: 'x', load: referenceLoader }).map((p) => p.title);
    expect(titles).toHaveLength(7);
    for (const f of ['FP8 block', 'MXFP4', 'NVFP4', 'static FP8', 'INT4 groups (compressed', 'INT4 groups (GPTQ', 'INT4 groups (AWQ']) expect(titles.some((t) => t.includes(f)), f).toBe(true);
  });

  it('passes the reference loader, and a loader declaring the dequantized form', async () => {
    const dequantizing: Loader = {
      name: 'dequantizing reference',
      load: async (dir, req) => {
        const d = await CheckpointDir.open(dir);
        const scheme = quantSchemeOf(d.config.raw);
        await d.close();
        const c = await referenceLoader.load(dir, req);
        return scheme ? dequantizeCanonical(c, scheme, req) : c;
      },
    };
    for (const load of [referenceLoader, dequantizing]) {
      const opts = { name: load.name, load, forward: referenceBackend };
      for (const p of quantizedProperties(opts)) {
        const d = await checkSuiteProperty(p, opts, { endOnFailure: true });
        expect(d.failed, `${p.title}: ${String(d.errorInstance)}`).toBe(false);
      }
    }
  }, 600_000);


  it('catches loaders that get quantized checkpoints wrong', async () => {
    for (const load of [shiftedScales, unscaled]) {
      const opts = { name: load.name, load };
      const d = await checkSuiteProperty(quantizedProperties(opts)[0]!, opts, { endOnFailure: true });
      expect(d.failed, load.name).toBe(true);
    }
  });

  // Each quantized-format mutant of the catalogue is caught by the quantized families of the
  // default suite (mutants.test.ts counts the cases over the whole suite).
  const families: Record<string, string> = {
    'fp4-nibble-order-swapped': 'NVFP4',
    'nvfp4-scale-2-from-expert-0': 'NVFP4',
    'nvfp4-gate-scale-2-for-up': 'NVFP4',
    'input-scale-dropped': 'static FP8',
    'k-scales-not-cut': 'FP8 block',
    'fp8-w13-requantized-to-max-scale': 'static FP8',
    'quantized-router-accepted': 'FP8 block',
    'int4-zero-point-ignored': 'INT4 groups (compressed',
    'int4-nibble-order-confused': 'INT4 groups (AWQ',
    'gptq-zeros-without-plus-one': 'INT4 groups (GPTQ',
    'int4-g-idx-ignored': 'INT4 groups (GPTQ',
    'int4-group-size-assumed-128': 'INT4 groups (GPTQ',
    'nvfp4-scale-2-applied-twice': 'NVFP4',
  };
  // Issue 15's Why list, in the other families it names: INT4 group scales not cut along K under TP (vllm#41511, W4A16);
  // NVFP4 weight_scale_2 never loaded; compressed-tensors' fused gate_up_proj_packed unmapped (llm-compressor#2939).
  const alsoIn: Array<[string, string]> = [
    ['k-scales-not-cut', 'INT4 groups (GPTQ'],
    ['k-scales-not-cut', 'INT4 groups (AWQ'],
    ['nvfp4-scale-2-not-loaded', 'NVFP4'],
    ['fused-int4-packed-unmapped', 'INT4 groups (compressed'],
    // MXFP4 shares E2M1's low-nibble-first order, in every layout family it now serves.
    ['fp4-nibble-order-swapped', 'MXFP4'],
  ];
  for (const [name, family] of [...Object.entries(families), ...alsoIn]) {
    it(`catches ${name} in the ${family} family`, async () => {
      const m = MUTANTS.find((x) => x.name === name)!;
      // A mutant the default draw need not reach runs with its own settings (catalogue.ts SUITE).
      const opts = { name, load: m.loader, ...(m.suite && { capabilities: m.suite.capabilities, cases: m.suite.cases }) };
      const p = quantizedProperties(opts).find((x) => x.title.includes(family))!;
      const d = await checkSuiteProperty(p, opts, { endOnFailure: true });
      expect(d.failed, name).toBe(true);
      // Diagnosed with its own kind first (mutants.test.ts checks this over the whole suite).
      const failure = d.errorInstance instanceof ConformanceCaseFailure ? d.errorInstance.failure : undefined;
      expect(failure?.diagnosis?.[0]?.kind, name).toBe(m.diagnosis);
    });
  }

  it('W4A16 (compressed-tensors) group scales left whole along K are caught at every TP > 1, diagnosed not-cut (vllm#41511: right at TP 2, wrong at TP 8)', async () => {
    const m = MUTANTS.find((x) => x.name === 'k-scales-not-cut')!;
    const workDir = await mkdtemp(join(tmpdir(), 'moe-k-scales-'));
    try {
      for (const tp of [1, 2, 4]) {
        const spec = parseSpec(`moe:load:model=qwen3_moe;layout=fused;dtype=int4-ct-g32;e=2;h=64;i=128;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=${tp};ep=1;placement=linear`);
        const o = await checkCase(spec, { loader: m.loader }, { workDir });
        if (tp === 1) {
          expect(o.status, 'TP 1 has nothing to cut').toBe('pass');
          continue;
        }
        expect(o.status, `TP ${tp}`).toBe('fail');
        if (o.status === 'fail') expect(o.failure.diagnosis?.[0]).toMatchObject({ kind: 'not-cut', tensor: 'layers.0.experts.w2_scale' });
      }
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
