// The engine forms of spec §8 end to end: every correct form loader passes the load and
// layout properties once it declares its forms (and fails without the declaration: the
// mapping is what lets it pass), and every mutant that declares a form but gets it wrong is
// caught, with a message naming the form, the tensor and the rank.
import type { ModelType } from '../../harness/layouts/registry.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseForms, toCanonicalRanks } from '../../harness/canonical/forms.js';
import { referenceLoader } from '../../harness/loader/load.js';
import { sharedStore } from '../checkpoint-store.js';
import { memoLoader } from '../memo.js';
import { checkCase, forwardVerdict, type PropertyContext } from '../properties.js';
import { writeCheckpoint } from '../materialize.js';
import { semanticsOf } from '../../harness/quant/layout.js';
import { WHOLE, type ParallelRequest } from '../../harness/tensor.js';
import { referenceForward } from '../../kernels/moe.js';
import { loadRanks } from '../../kernels/ranks.js';
import { parseSpec, specSeed, type CaseSpec } from '../spec.js';
import { DEFAULT_CASES, checkSuiteProperty, defaultSeed, suiteProperties, targetOf } from '../suite-properties.js';
import { emitEplb, FORM_LOADERS, FORM_MUTANTS, type FormLoader } from './engine-forms.js';
import { load, modelOf } from './catalogue.js';
import { defineMoeConformanceSuite } from '../vitest.js';

/** Cases chosen so that every form has something to do: shared experts of n = 2 and n = 1 slots of I, a free-sized gated one, biases, H == 2*Ir, TP 3, EP with remainders, round-robin, TP 1, FP8 and MXFP4 experts (whose scales w31 and eplb carry along; transposed, padding and shared slots leave quantized experts as they are). */
const CASES: CaseSpec[] = [
  'moe:load:model=deepseek_v3;layout=fused;dtype=f16;e=8;h=16;i=8;is=16;k=2;g=4;tg=2;layers=2;shards=scatter-2;tp=2;ep=2;placement=linear',
  'moe:load:model=deepseek_v3;layout=fused;dtype=f32;e=8;h=6;i=6;is=6;k=8;g=2;tg=2;layers=2;shards=scatter-3;tp=2;ep=2;placement=linear',
  'moe:load:model=qwen2_moe;layout=original;dtype=bf16;e=8;h=16;i=8;is=4;k=2;g=1;tg=1;layers=2;shards=max-1024;tp=2;ep=3;placement=round_robin',
  'moe:load:model=gpt_oss;layout=original;dtype=bf16;e=8;h=6;i=6;is=0;k=4;g=1;tg=1;layers=2;shards=scatter-3;tp=2;ep=2;placement=linear',
  'moe:load:model=mixtral;layout=original;dtype=f16;e=7;h=4;i=18;is=0;k=3;g=1;tg=1;layers=2;shards=scatter-2;tp=3;ep=2;placement=linear',
  'moe:load:model=deepseek_v3;layout=fused;dtype=bf16;e=8;h=16;i=8;is=16;k=2;g=4;tg=2;layers=1;shards=single;tp=1;ep=1;placement=linear',
  'moe:load:model=gpt_oss;layout=fused;dtype=mxfp4;e=7;h=32;i=64;is=0;k=4;g=1;tg=1;layers=1;shards=single;tp=2;ep=2;placement=round_robin',
  'moe:load:model=deepseek_v3;layout=fused;dtype=fp8;e=2;h=20;i=24;is=48;k=2;g=1;tg=1;layers=1;shards=single;tp=2;ep=2;placement=round_robin',
  'moe:layout:model=qwen2_moe;layout=both;dtype=f32;e=5;h=8;i=4;is=8;k=2;g=1;tg=1;layers=1;shards=single;tp=2;ep=2;placement=round_robin',
  // INT4 groups for marlin (w31 and eplb carry their companions): Ir = group < H, so w13's scales need the grouped permutation
  // and w2's the single-group one; AWQ's and GPTQ's zero points; H = 32 leaves w2 untiled (N % 64 != 0), kept as spec §4.
  'moe:load:model=qwen3_moe;layout=fused;dtype=int4-ct-g32;e=4;h=64;i=64;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=2;ep=2;placement=linear',
  'moe:load:model=mixtral;layout=original;dtype=int4-awq-g32;e=3;h=64;i=96;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=3;ep=1;placement=linear',
  'moe:load:model=qwen3_moe;layout=original;dtype=int4-gptq-g64-asym;e=2;h=128;i=128;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=2;ep=1;placement=linear',
  'moe:layout:model=qwen3_moe;layout=both;dtype=int4-gptq-g32;e=2;h=32;i=64;is=0;k=1;g=1;tg=1;layers=1;shards=single;tp=1;ep=1;placement=linear',
].map(parseSpec);

let root: string;
let context: PropertyContext;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'moe-forms-'));
  context = { workDir: join(root, 'work'), checkpoints: sharedStore(join(root, 'checkpoints')), reference: memoLoader(referenceLoader, 256) };
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const run = (l: FormLoader, spec: CaseSpec, declared = true) => checkCase(spec, { loader: l.loader, ...(declared && { forms: parseForms(l.forms) }) }, context);

describe('correct form loaders', () => {
  for (const l of FORM_LOADERS) {
    it(`${l.name}: passes every case when it declares ${l.forms.join(', ')}`, async () => {
      const outcomes = await Promise.all(CASES.map((s) => run(l, s)));
      const failed = outcomes.map((o, i) => (o.status === 'fail' ? `${CASES[i]!.kind} ${CASES[i]!.checkpoint.model.modelType}: ${o.failure.message}` : '')).filter(Boolean);
      expect(failed).toEqual([]);
    });
  }

  it('fail without the declaration (so the mapping is what makes them pass)', async () => {
    for (const l of FORM_LOADERS) {
      const outcomes = await Promise.all(CASES.map((s) => run(l, s, false)));
      expect(outcomes.some((o) => o.status === 'fail'), l.name).toBe(true);
    }
  });
});

/** What each mutant's failure must say: the form or the tensor it broke. */
const CAUGHT_BY: Record<string, RegExp> = {
  'w31-declared-gate-first': /\(declared forms w31 mapped to the canonical form\): tensor layers\.\d\.experts\.w13 differs at expert \d+ \(slot \d+\), gate row \d+, column \d+: found 0x[0-9a-f]+/,
  'transposed-w2-untransposed': /FormMismatch: TP rank \d\/\d, EP rank \d\/\d \w+: declared form transposed: a transposed w2 is \[E_local, Ir, H\] \(expected \[\d+,\d+,\d+\], found \[\d+,\d+,\d+\]\) \[tensor "layers\.\d\.experts\.w2"\]/,
  'pad-ir-16-uninitialized': /FormMismatch: TP rank \d\/\d, EP rank \d\/\d \w+: declared form pad-ir-16: the gate half's padding rows must be zeros \(expected 0x0+ \(zero\) at \[0,\d+,0\], found 0x[0-9a-f]+ \([-\d.e]+\)\) \[tensor "layers\.\d\.experts\.w13"\]/,
  'shared-replicated-own-shard-only': /FormMismatch: TP rank 1\/2, .*declared form shared-replicated: the replicated shared expert differs from TP rank 0\/2, EP rank 0\/\d \w+'s copy at \[\d+,\d+\] \(expected 0x[0-9a-f]+ \([-\d.e]+\), found 0x[0-9a-f]+ \([-\d.e]+\)\) \[layer \d, tensor "layers\.\d\.shared\.w13"\]/,
  'shared-slots-split-after-tp-cut': /declared forms shared-expert-slots mapped .*shared\.w13/,
  'marlin-w13-scales-with-wrong-k': /declared forms marlin mapped .*experts\.w13_scale differs .*\{diagnosis marlin-scale-permutation\}/,
  'eplb-replica-by-slot-index': /FormMismatch: .*declared form eplb: physical slot \d+ holds expert \d+ but differs from its copy in EP rank \d slot \d+ at \[\d+,\d+\] \(expected 0x[0-9a-f]+ \([-\d.e]+\), found 0x[0-9a-f]+ \([-\d.e]+\)\) \[layer \d, tensor "layers\.\d\.experts\.w13"\]/,
};

describe('mutants that declare a form and get it wrong', () => {
  it('every form has a correct loader and a mutant', () => {
    const forms = (ls: readonly FormLoader[]) => new Set(ls.flatMap((l) => parseForms(l.forms).names.map((n) => n.replace(/^pad-ir-\d+$/, 'pad-ir-N'))));
    const all = ['w31', 'transposed', 'pad-ir-N', 'marlin', 'shared-replicated', 'shared-expert-slots', 'eplb'];
    expect([...forms(FORM_LOADERS)].sort()).toEqual([...all].sort());
    expect([...forms(FORM_MUTANTS)].sort()).toEqual([...all].sort());
    expect(Object.keys(CAUGHT_BY).sort()).toEqual(FORM_MUTANTS.map((m) => m.name).sort());
  });
  for (const m of FORM_MUTANTS) {
    it(`${m.name} is caught: ${m.bug}`, async () => {
      const outcomes = await Promise.all(CASES.map((s) => run(m, s)));
      const messages = outcomes.flatMap((o) => (o.status === 'fail' ? [`${o.failure.message}${o.failure.tensor ? ` [tensor ${o.failure.tensor}]` : ''}${o.failure.diagnosis?.[0] ? ` {diagnosis ${o.failure.diagnosis[0].kind}}` : ''}`] : []));
      expect(messages.length, `${m.name} passed every case`).toBeGreaterThan(0);
      expect(messages.join('\n')).toMatch(CAUGHT_BY[m.name]!);
      // Every failure is diagnosed, a form mismatch refused before any comparison included ('unknown' with what happened).
      for (const o of outcomes) if (o.status === 'fail') expect(o.failure.diagnosis?.length, `${m.name}: ${o.failure.message}`).toBeGreaterThan(0);
    });
  }
});

it('marlin with w13\'s scale permutation chosen from K = Ir: right while Ir > group (TP 1 here), wrong once Ir == group (TP 2), as vLLM at TP 2 and TP 8', async () => {
  const m = FORM_MUTANTS.find((x) => x.name === 'marlin-w13-scales-with-wrong-k')!;
  const at = (tp: number) => parseSpec(`moe:load:model=qwen3_moe;layout=original;dtype=int4-gptq-g64-asym;e=2;h=128;i=128;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=${tp};ep=1;placement=linear`);
  expect((await run(m, at(1))).status).toBe('pass');
  const o = await run(m, at(2));
  expect(o.status).toBe('fail');
  if (o.status === 'fail') expect(o.failure.diagnosis?.[0]).toMatchObject({ kind: 'marlin-scale-permutation', tensor: 'layers.0.experts.w13_scale' });
});

it('the default suite catches every form mutant (how soon: CAUGHT-FORMS.md)', async () => {
  // Each mutant declares its forms; the suite's properties in order, up to the first failure.
  const rows = await Promise.all(
    FORM_MUTANTS.map(async (m) => {
      const opts = { name: m.name, load: m.loader, capabilities: { forms: m.forms } };
      let cases = 0;
      for (const p of suiteProperties(opts)) {
        const d = await checkSuiteProperty(p, opts, { endOnFailure: true, context: { checkpoints: context.checkpoints!, reference: context.reference! } });
        cases += d.numRuns;
        if (d.failed) return `| ${m.name} | ${m.forms.join(', ')} | ${m.bug} | ${cases} | ${String((d.errorInstance as Error)?.message).split('\n')[1]?.replace(/\|/g, '\\|')} |`;
      }
      return `| ${m.name} | ${m.forms.join(', ')} | ${m.bug} | ${cases} | **not caught** |`;
    }),
  );
  const table = [
    '# Engine-form mutants and how soon the suite catches them',
    '',
    `Each row is a loader from [engine-forms.ts](engine-forms.ts) that declares an engine form (spec/loader-protocol.md §8) and gets it wrong. "Cases" is how many generated cases the default suite (${DEFAULT_CASES} cases per property, seed ${defaultSeed()}), given the mutant's declared forms, ran until the first failure. Written by engine-forms.test.ts.`,
    '',
    '| mutant | declares | bug | cases | first failure |',
    '| --- | --- | --- | ---: | --- |',
    ...rows,
    '',
  ].join('\n');
  await writeFile(fileURLToPath(new URL('./CAUGHT-FORMS.md', import.meta.url)), table);
  expect(rows.filter((r) => r.endsWith('**not caught** |'))).toEqual([]);
});

it('eplb: a wrong expert held in two identical copies is caught by the bit-exact comparison, which names the physical slot it came from', async () => {
  // Expert 4 (first of EP rank 1; EP rank 0 holds its redundant copy) loaded from expert 5's weights in both copies.
  const loader = { name: 'eplb, expert 4 from 5', load: async (dir: string, req: ParallelRequest) => emitEplb((id) => (id === 4 ? 5 : id))(await load(dir, req), { dir, req, m: await modelOf(dir) }) };
  const o = await checkCase(CASES[0]!, { loader, forms: parseForms(['eplb']) }, context);
  expect(o.status).toBe('fail');
  if (o.status !== 'fail') return;
  expect(o.failure.message).toMatch(/^TP rank 0\/2, EP rank 1\/2 linear \(declared forms eplb mapped to the canonical form\): tensor layers\.0\.experts\.w13 differs at expert 4 \(slot 0\), gate row 0, column 0: .* \(expert slot 0 was taken from EP rank 0 physical slot 4\)$/);
});

describe('the forward counts each form once', () => {
  it('a replicated shared expert and a redundant EPLB slot count once after mapping; summed as the loader wrote them, they do not', async () => {
    const spec = CASES[0]!; // deepseek_v3, shared expert, TP 2 x EP 2
    if (spec.kind !== 'load') throw new Error('a load case');
    const dir = await mkdtemp(join(root, 'forward-'));
    const g = await writeCheckpoint(spec.checkpoint, specSeed(spec), dir);
    const sem = semanticsOf(g.config);
    const tokens = 8;
    const x = Float32Array.from({ length: tokens * sem.hidden }, (_, i) => Math.sin(i));
    const layer = sem.moeLayers[0]!;
    const want = referenceForward(sem, layer, [{ req: WHOLE, tensors: await referenceLoader.load(dir, WHOLE) }], x, tokens, { bound: true });
    for (const name of ['shared-replicated', 'eplb']) {
      const l = FORM_LOADERS.find((f) => f.name === name)!;
      const raw = await loadRanks(l.loader, dir, spec.parallel);
      const mapped = toCanonicalRanks(parseForms(l.forms), raw, g.dims);
      expect(forwardVerdict(want, referenceForward(sem, layer, mapped, x, tokens).output, tokens, name).status, name).toBe('pass');
      let unmapped: string;
      try {
        unmapped = forwardVerdict(want, referenceForward(sem, layer, raw, x, tokens).output, tokens, name).status;
      } catch (e) {
        unmapped = `refused: ${(e as Error).message}`;
      }
      expect(unmapped, name).not.toBe('pass');
    }
  });
});

// As an engine's own test suite would call it: an engine dumping w31, EPLB, shared slots, padding and transposed weights.
const combined = FORM_LOADERS.find((l) => l.forms.length > 1)!;
defineMoeConformanceSuite({ name: `defineMoeConformanceSuite with capabilities.forms (${combined.forms.join(', ')})`, load: combined.loader, capabilities: { forms: combined.forms, modelTypes: ['deepseek_v3', 'gpt_oss'], maxTp: 2, maxEp: 2 }, cases: 2 });

describe('through the suite options', () => {
  it('defineMoeConformanceSuite refuses an unknown form where the suite is defined', () => {
    expect(() => defineMoeConformanceSuite({ name: 'typo', load: referenceLoader, capabilities: { forms: ['w3l'] } })).toThrow(/^capabilities\.forms: unknown engine form \(expected transposed \| pad-ir-N .*found w3l\) \[file typo: capabilities\]$/);
  });

  it('capabilities.forms reaches the properties: declared, the default suite passes; undeclared, it fails', async () => {
    const l = FORM_LOADERS.find((x) => x.name === 'shared-replicated')!;
    const base = { name: l.name, load: l.loader, cases: 2, capabilities: { modelTypes: ['deepseek_v3'] as ModelType[], maxTp: 2, maxEp: 2, layouts: ['fused'] as const } };
    const ctx = { context: { checkpoints: context.checkpoints!, reference: context.reference! } };
    const declared = { ...base, capabilities: { ...base.capabilities, forms: l.forms } };
    const [loads] = suiteProperties(declared);
    expect((await checkSuiteProperty(loads!, declared, ctx)).failed).toBe(false);
    expect((await checkSuiteProperty(suiteProperties(base)[0]!, base, { ...ctx, endOnFailure: true })).failed).toBe(true);
  });

  it('an unknown or conflicting form fails before any case runs', () => {
    expect(() => targetOf({ name: 'x', load: referenceLoader, capabilities: { forms: ['w13-as-w31'] } })).toThrow(/unknown engine form \(expected transposed \| pad-ir-N \| marlin \| w31 .*found w13-as-w31\)/);
    expect(() => targetOf({ name: 'x', load: referenceLoader, capabilities: { forms: ['shared-replicated', 'shared-expert-slots'] } })).toThrow(/capabilities\.forms: engine forms shared-replicated and shared-expert-slots exclude each other/);
  });
});
