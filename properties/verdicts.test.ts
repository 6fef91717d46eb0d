// Verdicts an engine team can trust (issue 18): refusal cases are conclusive only when the
// loader loads the valid twin, a wordless exit is not a refusal, invalid requests are asked
// of every rank, and a failure names its rank, layout, defect and stderr, with its files kept.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MoeConformanceError } from '../harness/errors.js';
import { referenceLoader } from '../harness/loader/load.js';
import { commandLoader, LoaderRefused } from '../harness/protocol/command-loader.js';
import type { Canonical, Loader, ParallelRequest } from '../harness/tensor.js';
import { formatCaseId } from '../harness/conformance/case-id.js';
import { fixturesIn } from '../golden/golden.js';
import { goldenCases } from './golden-cases.js';
import { checkCase, type Target } from './properties.js';
import type { Breakage, CaseSpec, Layout, ModelSpec } from './spec.js';

class CannotLoad extends MoeConformanceError {}

const model = (modelType: string, m: Partial<ModelSpec> = {}): ModelSpec => ({ modelType, experts: 4, hidden: 8, intermediate: 4, sharedIntermediate: 0, topK: 2, groups: 1, topkGroups: 1, layers: 1, ...m });
const checkpoint = (t: string, layout: Layout = 'original', m: Partial<ModelSpec> = {}) => ({ model: model(t, m), layout, dtype: 'f32' as const, shards: { kind: 'single' as const } });
const refuse = (t: string, broken: Breakage = 'missing-expert', layout: Layout = 'original'): CaseSpec => ({ kind: 'refuse', checkpoint: checkpoint(t, layout), broken });
const epTooLarge = (t: string): CaseSpec => ({ kind: 'request', checkpoint: checkpoint(t), parallel: { tp: 1, ep: 5, placement: 'linear' }, bad: 'ep-too-large' });

const modelTypeOf = (dir: string) => (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model_type: string }).model_type;
const loader = (name: string, load: (dir: string, req: ParallelRequest) => Promise<Canonical>): Target => ({ loader: { name, load } });
/** Refuses everything, with a reason. */
const alwaysRefuses = loader('always refuses', async (dir) => {
  throw new CannotLoad('unsupported checkpoint', { file: dir });
});
/** A command loader that exits 1 on every call without a word. */
const wordlessAlways = loader('exit 1, empty stderr', async () => {
  throw new LoaderRefused('loader exited 1', {}, '', 1);
});
/** The reference, except that it cannot load some model types (an engine without them). */
const without = (types: string[]): Target =>
  loader(`reference without ${types.join(', ')}`, async (dir, req) => {
    if (types.includes(modelTypeOf(dir))) throw new CannotLoad(`model type ${modelTypeOf(dir)} is not supported`, { file: dir });
    return referenceLoader.load(dir, req);
  });
/** The reference, but its refusals are wordless exits. */
const wordlessRefusals = loader('wordless', async (dir, req) => {
  try {
    return await referenceLoader.load(dir, req);
  } catch {
    throw new LoaderRefused('loader exited 1', {}, '', 1);
  }
});
/** The reference, but whatever it refuses is accepted as nothing. */
const acceptsAll = loader('accepts all', (dir, req) => referenceLoader.load(dir, req).catch(() => new Map()));
/** The reference, but an invalid request is refused on rank 0 only (the engine). */
const refusesRankZeroOnly = loader('rank 0 only', (dir, req) => referenceLoader.load(dir, req).catch((e: unknown) => (req.tpRank === 0 && req.epRank === 0 ? Promise.reject(e) : new Map())));

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'moe-verdicts-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});
const ctx = () => ({ workDir: join(work, 'cases') });

describe('refusal cases are conclusive only when the valid twin loads', () => {
  it('an always-refusing loader is inconclusive, never passing, on refuse and request cases', async () => {
    for (const target of [alwaysRefuses, wordlessAlways]) {
      const r = await checkCase(refuse('mixtral'), target, ctx());
      expect(r.status, target.loader.name).toBe('inconclusive');
      expect(r.status === 'inconclusive' && r.note).toMatch(/also refused the valid twin \(original layout, TP rank 0\/1, EP rank 0\/1 linear\)/);
      expect((await checkCase(epTooLarge('olmoe'), target, ctx())).status, target.loader.name).toBe('inconclusive');
    }
  });
  it('a loader that cannot load a model type is inconclusive on that type only', async () => {
    const target = without(['mixtral']);
    expect((await checkCase(refuse('mixtral', 'wrong-shape'), target, ctx())).status).toBe('inconclusive');
    expect((await checkCase(refuse('olmoe', 'wrong-shape'), target, ctx())).status).toBe('pass');
    expect((await checkCase(refuse('olmoe', 'missing-expert', 'fused'), target, ctx())).status).toBe('pass');
    // The note quotes the loader's own reason.
    const command = loader('command without mixtral', async () => {
      throw new LoaderRefused('loader exited 1\n--- loader stderr ---\nerror: mixtral is not supported', {}, 'loading...\nerror: mixtral is not supported\n', 1);
    });
    const r = await checkCase(refuse('mixtral'), command, ctx());
    expect(r.status === 'inconclusive' && r.note).toContain('LoaderRefused: loader exited 1: error: mixtral is not supported; its refusal of the broken checkpoint proves nothing');
  });
  it('a wordless exit is not a refusal (spec §2.1)', async () => {
    const r = await checkCase(refuse('olmoe'), wordlessRefusals, ctx());
    expect(r.status).toBe('fail');
    expect(r.status === 'fail' && r.failure.message).toMatch(/refused \(exit 1\) without a reason on stderr/);
  });
});

describe('invalid requests are asked of every rank', () => {
  it('P > E refused on rank 0 but accepted on rank 1 fails, naming rank 1', async () => {
    const r = await checkCase(epTooLarge('olmoe'), refusesRankZeroOnly, ctx());
    expect(r.status).toBe('fail');
    expect(r.status === 'fail' && r.failure.rank).toBe('TP rank 0/1, EP rank 1/5 linear');
    expect((await checkCase(epTooLarge('olmoe'), { loader: referenceLoader }, ctx())).status).toBe('pass');
  });
});

describe('a failure names its facts', () => {
  it('a silently accepted broken checkpoint names the defect and the tensor it was made on', async () => {
    const r = await checkCase(refuse('olmoe', 'missing-expert'), acceptsAll, ctx());
    expect(r.status).toBe('fail');
    if (r.status !== 'fail') return;
    expect(r.failure.defect).toMatch(/^removed model\.layers\.0\.mlp\.experts\.3\./);
    expect(r.failure.message).toContain(r.failure.defect);
    expect(r.failure.layout).toBe('original');
    expect(r.failure.rank).toBe('TP rank 0/1, EP rank 0/1 linear');
    const dup = await checkCase(refuse('mixtral', 'duplicate-expert', 'fused'), acceptsAll, ctx());
    expect(dup.status === 'fail' && dup.failure.defect).toMatch(/^added model\.layers\.0\.\S+experts\./);
  });
  it('a loader error on a valid checkpoint names the rank and the layout it came from', async () => {
    const failsOnRank1 = loader('rank 1 fails', async (dir, req) => {
      if (req.tpRank === 1) throw new CannotLoad('cannot place the experts', { file: dir });
      return referenceLoader.load(dir, req);
    });
    const r = await checkCase({ kind: 'load', checkpoint: checkpoint('olmoe', 'fused'), parallel: { tp: 2, ep: 1, placement: 'linear' } }, failsOnRank1, ctx());
    expect(r.status === 'fail' && [r.failure.rank, r.failure.layout]).toEqual(['TP rank 1/2, EP rank 0/1 linear', 'fused']);
    // Without --keep-failures the checkpoint is gone after the run, and the failure says so instead of naming a dead path.
    expect(r.status === 'fail' && r.failure.message).toMatch(/\[file <checkpoint-fused: removed after the run; --keep-failures DIR keeps it>\]/);
    // So does every other text a report prints of it: the diagnosis line above the message too.
    const details = r.status === 'fail' ? (r.failure.diagnosis ?? []).map((d) => d.detail) : [];
    expect(details.length).toBeGreaterThan(0);
    for (const detail of details) expect(detail).not.toMatch(/\/moe-(case|check)-|tmp/);
    expect(details.join('\n')).toContain('<checkpoint-fused: removed after the run; --keep-failures DIR keeps it>');
    const layoutCase: CaseSpec = { kind: 'layout', checkpoint: checkpoint('olmoe'), parallel: { tp: 1, ep: 2, placement: 'linear' } };
    const fusedFails = loader('fused fails', async (dir, req) => {
      if (readFileSync(join(dir, 'model.safetensors')).includes('gate_up_proj')) throw new CannotLoad('fused not supported', { file: dir });
      return referenceLoader.load(dir, req);
    });
    const l = await checkCase(layoutCase, fusedFails, ctx());
    expect(l.status === 'fail' && [l.failure.rank, l.failure.layout]).toEqual(['TP rank 0/1, EP rank 0/2 linear', 'fused']);
  });
  it('a golden case names the rank and layout of a failing call', async () => {
    const fixtures = await fixturesIn([fileURLToPath(new URL('../golden/hf/olmoe-bf16', import.meta.url))]);
    const failsOnRank1 = loader('rank 1 fails', async (dir, req) => {
      if (req.tpRank === 1) throw new CannotLoad('cannot place the experts', { file: dir });
      return referenceLoader.load(dir, req);
    });
    const c = (await goldenCases(fixtures, failsOnRank1, (id) => id)).find((x) => /layout=fused;tp=2;ep=1;/.test(formatCaseId(x.id)))!;
    const r = await c.run(new AbortController().signal);
    expect(r.status === 'fail' && [r.failure.rank, r.failure.layout]).toEqual(['TP rank 1/2, EP rank 0/1 linear', 'fused']);
  });
  it("keeps the loader's stderr even when its output is readable", async () => {
    const fakes = fileURLToPath(new URL('../harness/protocol/test/fake-loaders/', import.meta.url));
    const warns = { loader: commandLoader(`${JSON.stringify(process.execPath)} ${join(fakes, 'warn-accept.mjs')}`, { timeoutMs: 30_000, workDir: work }) };
    const r = await checkCase(refuse('olmoe'), warns, ctx());
    expect(r.status).toBe('fail');
    expect(r.stderr).toContain('falling back to linear');
    expect(r.stderr).toMatch(/^\[original, TP rank 0\/1, EP rank 0\/1 linear\] warning/);
  });
  it('--keep-failures keeps the checkpoints, a reason file and the reference outputs where the failure says', async () => {
    const keepFailures = join(work, 'kept');
    const workDir = join(work, 'cases-kept');
    const r = await checkCase(refuse('olmoe', 'missing-expert'), acceptsAll, { workDir, keepFailures });
    expect(r.status).toBe('fail');
    if (r.status !== 'fail') return;
    const kept = r.failure.kept!;
    expect(existsSync(kept)).toBe(true);
    expect(readdirSync(kept).sort()).toEqual(expect.arrayContaining(['checkpoint-original-broken', 'checkpoint-original-valid-twin', 'reason.txt', 'loader-output-accepted.safetensors']));
    const reason = readFileSync(join(kept, 'reason.txt'), 'utf8');
    expect(reason).toMatch(/defect:   missing-expert: removed model\.layers\.0\.mlp\.experts\.3\./);
    expect(reason).toMatch(/reference: the reference loader refuses the broken checkpoint: /);
    expect(reason).not.toContain(workDir);
    // A load failure keeps the reference output it was compared with.
    const garbles = loader('garbles', async (dir, req) => {
      const t = await referenceLoader.load(dir, req);
      const w = [...t.keys()].find((k) => k.endsWith('experts.w13'))!;
      const bytes = t.get(w)!.bytes.slice();
      bytes[0]! ^= 1;
      t.set(w, { ...t.get(w)!, bytes });
      return t;
    });
    const l = await checkCase({ kind: 'load', checkpoint: checkpoint('mixtral'), parallel: { tp: 1, ep: 1, placement: 'linear' } }, garbles, { workDir, keepFailures });
    expect(l.status === 'fail' && readdirSync(l.failure.kept!)).toEqual(expect.arrayContaining(['reference-output-rank-tp0-ep0.safetensors', 'loader-output-rank-tp0-ep0.safetensors', 'reason.txt']));
    expect(l.status === 'fail' && l.failure.message).not.toContain(workDir);
  });
});
