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
import { checkSuiteProperty, defaultSeed, suiteProperties } from './suite-properties.js';
import { quantCaseArb } from './arbitraries/quantized.js';
import { specIdText } from './spec.js';

const quantizedProperty = (opts: { name: string; load: Loader }) => suiteProperties(opts).find((p) => p.title.startsWith('quantized'))!;

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
  it('draws FP8 (partial and straddling blocks) and MXFP4 cases whose IDs parse back', () => {
    const specs = fc.sample(quantCaseArb(), { seed: defaultSeed(), numRuns: 40 });
    expect(new Set(specs.map((s) => s.checkpoint.dtype))).toEqual(new Set(['fp8', 'mxfp4']));
    for (const s of specs) expect(specIdText(s)).toContain(`dtype=${s.checkpoint.dtype}`);
    expect(specs.some((s) => s.checkpoint.dtype === 'fp8' && s.kind === 'load' && s.parallel.tp > 1)).toBe(true);
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
      const d = await checkSuiteProperty(quantizedProperty(opts), opts, { endOnFailure: true });
      expect(d.failed, String(d.errorInstance)).toBe(false);
    }
  });

  it('catches loaders that get quantized checkpoints wrong', async () => {
    for (const load of [shiftedScales, unscaled]) {
      const opts = { name: load.name, load };
      const d = await checkSuiteProperty(quantizedProperty(opts), opts, { endOnFailure: true });
      expect(d.failed, load.name).toBe(true);
    }
  });
});

