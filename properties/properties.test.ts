import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoaderCrashed, LoaderTimedOut } from '../harness/protocol/command-loader.js';
import { MoeConformanceError } from '../harness/errors.js';
import { referenceLoader } from '../harness/loader/load.js';
import { encodeFloats } from '../harness/safetensors/codecs.js';
import { WHOLE, type Canonical, type Loader, type ParallelRequest, type Tensor } from '../harness/tensor.js';
import { loadRanks } from '../kernels/ranks.js';
import { referenceBackend, referenceForward, type ReferenceResult } from '../kernels/moe.js';
import type { MoeBackend } from '../kernels/backend.js';
import { diffCanonical, errorByExpertAndRow } from './diff.js';
import { hasTwoLayouts, layoutsDifferInNames } from './materialize.js';
import { checkCase, forwardVerdict } from './properties.js';
import { goldenCases, parseGoldenCaseId } from './golden-cases.js';
import { defaultGoldenRoots, fixturesIn } from '../golden/golden.js';
import { dequantizeCanonical } from '../harness/quant/dequantize.js';
import { schemeOf } from '../harness/quant/scheme.js';
import { planLoad } from '../harness/loader/load.js';
import { CoverageError, reassemble } from './reassemble.js';
import { BREAKAGES, parseSpec, type CaseSpec } from './spec.js';

const golden = (name: string) => new URL(`../golden/hf/${name}`, import.meta.url).pathname;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'moe-props-test-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const f32 = (shape: number[], values: number[]): Tensor => ({ dtype: 'F32', shape, bytes: encodeFloats('F32', values) });

describe('reassemble', () => {
  it.each([
    ['qwen2_moe-f32/original', { tp: 2, ep: 3, placement: 'round_robin' as const }],
    ['gpt_oss-bf16/fused', { tp: 2, ep: 3, placement: 'linear' as const }],
    ['deepseek_v3-bf16/fused', { tp: 4, ep: 1, placement: 'linear' as const }],
  ])('rebuilds the whole checkpoint from the ranks of %s', async (fixture, split) => {
    const dir = golden(fixture);
    const whole = await referenceLoader.load(dir, WHOLE);
    const ranks = await loadRanks(referenceLoader, dir, split);
    expect(diffCanonical(whole, reassemble(ranks), 'reassembled')).toBeUndefined();
  });

  it('names what does not fit together', async () => {
    const dir = golden('mixtral-f32/fused');
    const ranks = await loadRanks(referenceLoader, dir, { tp: 2, ep: 2, placement: 'linear' });
    const withIds = (r: (typeof ranks)[number], ids: number[]) => ({ ...r, tensors: new Map(r.tensors).set('layers.0.experts.ids', { dtype: 'I32' as const, shape: [ids.length], bytes: new Uint8Array(new Int32Array(ids).buffer) }) });
    // EP rank 1 claims expert 0 too (both of its TP ranks, so they agree with each other).
    const twice = ranks.map((r) => (r.req.epRank === 1 ? withIds(r, [0, 5, 6, 7]) : r));
    expect(() => reassemble(twice)).toThrow(/expert 0 is held twice/);
    const tpDisagree = ranks.map((r) => (r.req.epRank === 1 && r.req.tpRank === 1 ? withIds(r, [7, 6, 5, 4]) : r));
    expect(() => reassemble(tpDisagree)).toThrow(/TP ranks of EP rank 1 hold different experts/);
    const router = ranks.map((r, i) => (i === 3 ? { ...r, tensors: new Map(r.tensors).set('layers.0.router.weight', { ...r.tensors.get('layers.0.router.weight')!, bytes: new Uint8Array(r.tensors.get('layers.0.router.weight')!.bytes.length) }) } : r));
    expect(() => reassemble(router)).toThrow(/ranks disagree on a tensor that every rank holds whole.*router\.weight/);
    expect(() => reassemble(ranks.slice(1))).toThrow(CoverageError);
    const lacking = ranks.map((r, i) => (i === 0 ? { ...r, tensors: new Map([...r.tensors].filter(([k]) => k !== 'layers.1.experts.w2')) } : r));
    expect(() => reassemble(lacking)).toThrow(/lacks a tensor other ranks hold/);
    expect(() => reassemble([])).toThrow(CoverageError);
  });
});

describe('diff', () => {
  it('reports the first difference with a heat map by expert and row', () => {
    const e: Canonical = new Map([['layers.0.experts.w13', f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])]]);
    const f: Canonical = new Map([['layers.0.experts.w13', f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 10])]]);
    const d = diffCanonical(e, f, 'rank 0')!;
    expect(d.message).toMatch(/^rank 0: tensor layers\.0\.experts\.w13 differs at slot 1, up row 0, column 1: found 0x41200000 \(10\), expected 0x41000000 \(8\)/);
    // The f32 bit pattern of 8 is 0x41000000; its bytes in the file (00 00 00 41) are not a number anyone reads.
    expect(d.expected).toBe('0x41000000 (8)');
    expect(d.found).toBe('0x41200000 (10)');
    expect(d.heatmap).toEqual([[0, 0], [0, 2]]);
    // With the layer's expert ids, the slots are labelled by the experts they hold, and the diagnosis names the change.
    const ids = { dtype: 'I32' as const, shape: [2], bytes: new Uint8Array(new Int32Array([4, 9]).buffer) };
    const withIds = diffCanonical(new Map(e).set('layers.0.experts.ids', ids), new Map(f).set('layers.0.experts.ids', ids), 'rank 0')!;
    expect(withIds.heatmapRows).toEqual([4, 9]);
    expect(withIds.message).toContain('differs at expert 9 (slot 1), up row 0, column 1');
    expect(withIds.diagnosis).toEqual([{ tensor: 'layers.0.experts.w13', kind: 'unknown', detail: 'experts 9: no known relation to the reference; rows 1..2 differ (of 2)' }]);
    expect(diffCanonical(e, new Map(), 'r')).toMatchObject({ tensor: 'layers.0.experts.w13', expected: 'present', found: 'absent' });
    expect(diffCanonical(new Map(), e, 'r')).toMatchObject({ expected: 'absent', found: 'present' });
    expect(diffCanonical(e, new Map([['layers.0.experts.w13', { ...f32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]) }]]), 'r')).toMatchObject({ expected: '[2, 2, 2]', found: '[2, 4]' });
    expect(diffCanonical(e, new Map([['layers.0.experts.w13', { ...e.get('layers.0.experts.w13')!, dtype: 'I32' as const }]]), 'r')).toMatchObject({ expected: 'F32', found: 'I32' });
    expect(diffCanonical(e, e, 'r')).toBeUndefined();
  });
  it('marks NaN against a number, not NaN against NaN', () => {
    expect(errorByExpertAndRow(f32([2], [NaN, 1]), f32([2], [NaN, 1]))).toEqual([[0]]);
    expect(errorByExpertAndRow(f32([2], [NaN, 1]), f32([2], [0, 1]))[0]![0]).toBeNaN();
  });
});

describe('forwardVerdict', () => {
  const want = { output: new Float64Array([1, 2, 3, 4]), selected: new Int32Array([0, 1]), bounds: { strict: new Float64Array(4).fill(0.01), loose: new Float64Array(4).fill(1), logits: new Float64Array(0) } } as unknown as ReferenceResult;
  it('passes within the strict bound, warns within the loose one, fails beyond or on NaN', () => {
    expect(forwardVerdict(want, [1.005, 2, 3, 4], 2, 'x').status).toBe('pass');
    expect(forwardVerdict(want, [1.5, 2, 3, 4], 2, 'x')).toMatchObject({ status: 'warn', note: expect.stringMatching(/^x: max abs error 0\.5 at token 0, column 0/) });
    const f = forwardVerdict(want, [1, 2, 3, 9], 2, 'x');
    expect(f).toMatchObject({ status: 'fail', failure: { expected: '4', found: '9', heatmap: [[0, 0], [0, 5]], heatmapAxes: ['token', 'column'] } });
    expect(forwardVerdict(want, [1, 2, NaN, 4], 2, 'x').status).toBe('fail');
  });
});

describe('checkCase with a forward backend under test', () => {
  const load = parseSpec('moe:load:model=mixtral;layout=fused;dtype=f32;e=4;h=8;i=4;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=2;ep=2;placement=linear');
  const skewed = (delta: (bound: number) => number): MoeBackend => ({
    name: 'skewed',
    forward: async (sem, layer, ranks, x, tokens) => {
      const r = referenceForward(sem, layer, ranks, x, tokens, { bound: true });
      return { ...r, output: r.output.map((v, i) => v + delta(r.bounds!.strict[i]!)) };
    },
  });
  it('passes an exact backend, warns within the loose bound, fails beyond it', async () => {
    const ctx = { workDir: work };
    expect(await checkCase(load, { loader: referenceLoader, forward: referenceBackend }, ctx)).toEqual({ status: 'pass' });
    expect(await checkCase(load, { loader: referenceLoader, forward: skewed((b) => 4 * b) }, ctx)).toMatchObject({ status: 'warn', note: expect.stringMatching(/skewed forward of the ranks vs the float64 reference/) });
    expect(await checkCase(load, { loader: referenceLoader, forward: skewed(() => 1) }, ctx)).toMatchObject({ status: 'fail', failure: { heatmapAxes: ['token', 'column'] } });
  });
});

describe('checkCase on refusals', () => {
  const refuse = parseSpec('moe:refuse:model=mixtral;layout=original;dtype=f32;e=3;h=4;i=2;is=0;k=1;g=1;tg=1;layers=1;shards=single;broken=missing-expert');
  // Loads what the reference loads (the valid twin), and throws `e` where the reference refuses.
  const throwing = (e: unknown): Loader => ({ name: 't', load: (dir, req) => referenceLoader.load(dir, req).catch(() => Promise.reject(e)) });
  it('counts a typed error as a refusal and anything else as a failure', async () => {
    const ctx = { workDir: work };
    // A loader refusing the valid twin as well proves nothing by refusing the broken one.
    expect((await checkCase(refuse, { loader: { name: 'no', load: async () => Promise.reject(new MoeConformanceError('no')) } }, ctx)).status).toBe('inconclusive');
    expect((await checkCase(refuse, { loader: throwing(new MoeConformanceError('missing expert')) }, ctx)).status).toBe('pass');
    expect(await checkCase(refuse, { loader: throwing(new LoaderCrashed('segfault')) }, ctx)).toMatchObject({ status: 'fail', failure: { message: expect.stringMatching(/failed otherwise: LoaderCrashed/) } });
    expect(await checkCase(refuse, { loader: throwing(new LoaderTimedOut('slow')) }, ctx)).toMatchObject({ status: 'fail' });
    expect(await checkCase(refuse, { loader: throwing(new TypeError('x is undefined')) }, ctx)).toMatchObject({ status: 'fail', failure: { message: expect.stringMatching(/crashed: TypeError/) } });
    const accepting: Loader = { name: 'a', load: async () => new Map() };
    expect(await checkCase(refuse, { loader: accepting }, ctx)).toMatchObject({ status: 'fail', failure: { message: expect.stringMatching(/silently accepted/) } });
  });

  it('keeps a failing case\'s checkpoint and the loader\'s output', async () => {
    const keep = join(work, 'keep');
    const accepting: Loader = { name: 'a', load: async () => new Map([['layers.0.router.weight', f32([1], [1])]]) };
    await checkCase(refuse, { loader: accepting }, { workDir: work, keepFailures: keep });
    const [folder] = await readdir(keep);
    expect(folder).toMatch(/^moe_refuse_model=mixtral_/);
    expect((await readdir(join(keep, folder!))).sort()).toEqual([
      'checkpoint-original-broken',
      'checkpoint-original-valid-twin',
      'loader-output-accepted.safetensors',
      'loader-output-control-valid-twin.safetensors',
      'reason.txt',
    ]);
  });
});

describe('broken checkpoints', () => {
  const base = (model: string, layout: string, e: number, shared: number, shards: string) =>
    `moe:refuse:model=${model};layout=${layout};dtype=bf16;e=${e};h=8;i=4;is=${shared};k=${Math.min(2, e)};g=1;tg=1;layers=2;shards=${shards}`;
  const models: Array<[string, string, number, number, string]> = [
    ['mixtral', 'original', 3, 0, 'scatter-3'],
    ['qwen2_moe', 'fused', 12, 6, 'max-1024'],
    ['dbrx', 'original', 2, 0, 'single'],
    ['gpt_oss', 'fused', 4, 0, 'scatter-2'],
    ['granitemoe', 'original', 1, 0, 'single'],
    // Same names in both layouts, told apart by shape; non-gated experts.
    ['qwen3_vl_moe', 'original', 4, 0, 'single'],
    ['nemotron_h', 'fused', 4, 4, 'scatter-2'],
  ];
  const cases: CaseSpec[] = models.flatMap(([m, l, e, s, sh]) =>
    BREAKAGES.filter((b) => b !== 'half-fused' || layoutsDifferInNames(m)).map((b) => parseSpec(`${base(m, l, e, s, sh)};broken=${b}`)),
  );
  it.each(cases.map((c) => [c.kind === 'refuse' ? `${c.checkpoint.model.modelType} ${c.checkpoint.layout} ${c.broken}` : '', c] as const))('%s is refused by the reference loader', async (_name, spec) => {
    expect(await checkCase(spec, { loader: referenceLoader }, { workDir: work })).toEqual({ status: 'pass' });
  });
  it('only models with two layouts can be half fused', () => {
    expect(hasTwoLayouts('mixtral')).toBe(true);
    expect(['gpt_oss', 'llama4_text', 'dbrx', 'mistral4'].map(hasTwoLayouts)).toEqual([false, false, false, false]);
    expect(hasTwoLayouts('qwen3_vl_moe') && !layoutsDifferInNames('qwen3_vl_moe')).toBe(true);
  });
});

/** The reference loader as a worker offers it (spec §7.4): `loadRanks` serves several ranks per call; every call is logged by its ranks. */
function severalRanksLoader(): { loader: Loader; calls: string[] } {
  const calls: string[] = [];
  const name = (reqs: readonly ParallelRequest[]) => reqs.map((r) => `tp${r.tpRank}/${r.tpSize} ep${r.epRank}/${r.epSize}`).join(' + ');
  return {
    calls,
    loader: {
      name: 'several-ranks',
      load: (dir, req) => (calls.push(`load ${name([req])}`), referenceLoader.load(dir, req)),
      loadRanks: (dir, reqs) => (calls.push(`loadRanks ${name(reqs)}`), Promise.all(reqs.map((r) => referenceLoader.load(dir, r)))),
    },
  };
}

describe('a loader that serves several ranks per call (a worker, spec §7.4)', () => {
  it.each([
    ['TP 2', 'moe:load:model=mixtral;layout=fused;dtype=f32;e=4;h=16;i=8;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=2;ep=1;placement=linear', ['loadRanks tp0/2 ep0/1 + tp1/2 ep0/1']],
    ['EP 2', 'moe:load:model=mixtral;layout=fused;dtype=f32;e=4;h=16;i=8;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=1;ep=2;placement=linear', ['loadRanks tp0/1 ep0/2 + tp0/1 ep1/2']],
    ['layout, TP 2', 'moe:layout:model=mixtral;layout=both;dtype=f32;e=4;h=16;i=8;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=2;ep=1;placement=linear', ['loadRanks tp0/2 ep0/1 + tp1/2 ep0/1', 'loadRanks tp0/2 ep0/1 + tp1/2 ep0/1']],
  ])('is asked for every rank of a %s case in one call, as the case is checked', async (_what, id, want) => {
    const { loader, calls } = severalRanksLoader();
    expect(await checkCase(parseSpec(id), { loader }, { workDir: work })).toEqual({ status: 'pass' });
    // Only the repeat load (loading twice gives the same bytes) asks for one rank alone.
    expect(calls.filter((c) => c.startsWith('loadRanks'))).toEqual(want);
    expect(calls.filter((c) => c.startsWith('load ')).length).toBeLessThanOrEqual(1);
  });

  it('quantized golden fixtures: each is declared under a dtype a loader can name, and a dequantizing loader passes (spec §4)', async () => {
    const fixtures = (await fixturesIn(defaultGoldenRoots())).filter((f) => f.layouts.some((l) => l.dir.includes('hf-quant')));
    const cases = await goldenCases(fixtures, { loader: referenceLoader }, (x) => x);
    const dtypes = Object.fromEntries(cases.map((c) => [c.id.params.find(([k]) => k === 'fixture')![1], c.needs!.dtype]));
    expect(dtypes).toEqual({
      'deepseek_v3-fp8-shared': 'fp8-shared', 'gpt_oss-mxfp4': 'mxfp4', 'qwen3_moe-awq': 'int4-awq-g32', 'qwen3_moe-fp8': 'fp8', 'qwen3_moe-fp8-channel': 'fp8-ct-channel',
      'qwen3_moe-gptq-desc-act': 'int4-gptq-g32-desc-act', 'qwen3_moe-int4-g32-asym': 'int4-ct-g32-asym', 'qwen3_moe-nvfp4': 'nvfp4',
    });
    // The dequantized form: F32 expert weights, no scales, compared with the harness's own dequantization.
    const dequantizing: Loader = {
      name: 'dequantizing',
      load: async (dir, req) => {
        const plan = await planLoad(dir, req);
        await plan.dir.close();
        return dequantizeCanonical(await referenceLoader.load(dir, req), schemeOf(plan.dims.quant)!, req);
      },
    };
    for (const text of ['moe:golden:fixture=qwen3_moe-fp8;layout=fused;tp=1;ep=1;placement=linear', 'moe:golden:fixture=qwen3_moe-fp8;layout=fused;tp=2;ep=1;placement=linear']) {
      const [c] = await goldenCases([], { loader: dequantizing }, (x) => x, await parseGoldenCaseId(text));
      expect(await c!.run(new AbortController().signal), text).toMatchObject({ status: 'pass' });
    }
  });

  it('is asked for every rank of a golden case in one call', async () => {
    const { loader, calls } = severalRanksLoader();
    const only = await parseGoldenCaseId('moe:golden:fixture=mixtral-f32;layout=fused;tp=2;ep=1;placement=linear');
    const [golden] = await goldenCases([], { loader }, (x) => x, only);
    expect(await golden!.run(new AbortController().signal)).toMatchObject({ status: 'pass' });
    expect(calls).toEqual(['loadRanks tp0/2 ep0/1 + tp1/2 ep0/1']);
  });
});
