// The properties of spec §3, for any Loader (and optionally a forward backend), one
// branch per case kind. Each writes the case's checkpoint (or takes it from a shared
// store), asks the loader for every rank, and compares with the reference loader and kernels:
//   load    every rank bit-exact; the ranks reassemble the whole; the forward of the
//           summed ranks equals the unsharded forward (and the backend under test agrees
//           with the reference); loading twice gives the same bytes
//   layout  original and fused saves of the same weights load to the same bytes
//   refuse  a broken checkpoint is refused (exiting 0 with tensors is the worst failure)
//   request an invalid request (I % T != 0, P > E, rank out of range) is refused
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LoaderCrashed, LoaderOutputInvalid, LoaderTimedOut } from '../harness/protocol/command-loader.js';
import type { CaseFailure } from '../harness/conformance/results.js';
import type { CaseOutcome } from '../harness/conformance/results.js';
import { MoeConformanceError } from '../harness/errors.js';
import { semanticsOf } from '../harness/quant/layout.js';
import { referenceLoader } from '../harness/loader/load.js';
import { inFormOf } from '../harness/quant/dequantize.js';
import { writeSafetensors } from '../harness/safetensors/write.js';
import { WHOLE, type Canonical, type Loader, type ParallelRequest } from '../harness/tensor.js';
import { xoshiro128ss, normals } from '../harness/canonical/random.js';
import type { MoeBackend } from '../kernels/backend.js';
import { loadRanks } from '../kernels/ranks.js';
import { referenceForward, type ReferenceResult } from '../kernels/moe.js';
import { compareToBounds, findRoutingTies, type RoutingTie } from '../harness/compare/tolerance.js';
import { diffCanonical } from './diff.js';
import { writeBroken, writeCheckpoint, type Generated } from './materialize.js';
import { reassemble } from './reassemble.js';
import { specIdText, specSeed, type CaseSpec, type Layout, type ParallelSpec } from './spec.js';
import { privateStore, type CheckpointStore } from './checkpoint-store.js';
import { plural } from '../harness/errors.js';

export interface Target {
  loader: Loader;
  /** A forward backend under test, compared with the float64 reference on the loader's ranks. */
  forward?: MoeBackend;
}

export interface PropertyContext {
  /** A folder for the case's checkpoints (removed afterwards). */
  workDir: string;
  /** Where a failing case's checkpoint and loader outputs are kept. */
  keepFailures?: string;
  /** Where checkpoints are written (default: a private folder per case). */
  checkpoints?: CheckpointStore;
  /** The loader whose output is the expected one (default the reference loader; a memoized one saves time when many loaders share cases). */
  reference?: Loader;
  /** Tokens of the forward input (default: 1 to 24, drawn from the case seed, so that few tokens leave experts idle). */
  tokens?: number;
}

export const rankName = (req: ParallelRequest) => `TP rank ${req.tpRank}/${req.tpSize}, EP rank ${req.epRank}/${req.epSize} ${req.epPlacement}`;
const fail = (failure: CaseFailure): CaseOutcome => ({ status: 'fail', failure });

/** Runs one case against a target. Loader errors on valid input propagate: the runner records them as failures. */
export async function checkCase(spec: CaseSpec, target: Target, ctx: PropertyContext): Promise<CaseOutcome> {
  await mkdir(ctx.workDir, { recursive: true });
  const dir = await mkdtemp(join(ctx.workDir, 'case-'));
  const c: CaseContext = { ...ctx, store: ctx.checkpoints ?? privateStore(dir), reference: ctx.reference ?? referenceLoader, used: [], outputs: [] };
  let outcome: CaseOutcome | undefined;
  try {
    outcome = await dispatch(spec, target, c);
    return outcome;
  } finally {
    if (ctx.keepFailures && outcome?.status !== 'pass' && outcome?.status !== 'warn') await keep(spec, c, ctx.keepFailures);
    await rm(dir, { recursive: true, force: true });
  }
}

interface CaseContext extends PropertyContext {
  store: CheckpointStore;
  reference: Loader;
  /** Checkpoint folders the case used, by name, and the loader's outputs: what --keep-failures keeps. */
  used: Array<[string, string]>;
  outputs: Array<[string, Canonical]>;
}

/** The case's checkpoint in `layout` (default the spec's), valid or with the spec's defect. */
async function checkpointOf(spec: CaseSpec, c: CaseContext, layout: Layout = spec.checkpoint.layout): Promise<{ dir: string; value: Generated | undefined }> {
  const seed = specSeed(spec);
  const broken = spec.kind === 'refuse' ? spec.broken : undefined;
  const key = `${seed}|${specIdText(spec).replace(/^moe:\w+:/, '').replace(/;(tp|ep|placement|bad)=[^;]*/g, '')}|${layout}|${broken ?? 'valid'}`;
  const got = await c.store.checkpoint(key, (dir) =>
    broken ? writeBroken(spec.checkpoint, seed, broken, dir).then(() => undefined) : writeCheckpoint({ ...spec.checkpoint, layout }, seed, dir),
  );
  c.used.push([`checkpoint-${layout}`, got.dir]);
  return got;
}

async function dispatch(spec: CaseSpec, target: Target, c: CaseContext): Promise<CaseOutcome> {
  switch (spec.kind) {
    case 'load': {
      const { dir, value } = await checkpointOf(spec, c);
      return checkLoad(value!, dir, spec.parallel, target, c, specSeed(spec));
    }
    case 'layout': {
      const { dir: ckpt, value } = await checkpointOf(spec, c, 'original');
      const { dir: fusedDir } = await checkpointOf(spec, c, 'fused');
      const original = await loadRanks(target.loader, ckpt, spec.parallel);
      const fused = await loadRanks(target.loader, fusedDir, spec.parallel);
      for (const [i, { req, tensors }] of original.entries()) {
        c.outputs.push([`original-tp${req.tpRank}-ep${req.epRank}`, tensors], [`fused-tp${req.tpRank}-ep${req.epRank}`, fused[i]!.tensors]);
        const d = diffCanonical(tensors, fused[i]!.tensors, `${rankName(req)}: original (expected) vs fused (found) layout`);
        if (d) return fail(d);
        const r = diffCanonical(inFormOf(await c.reference.load(ckpt, req), tensors, value?.dims.quant, req), tensors, `${rankName(req)}: vs the reference`);
        if (r) return fail(r);
      }
      return { status: 'pass' };
    }
    case 'refuse': {
      const { dir } = await checkpointOf(spec, c);
      return expectRefusal(() => target.loader.load(dir, WHOLE), `a checkpoint with a ${spec.broken} defect`, c.outputs);
    }
    case 'request': {
      const { dir } = await checkpointOf(spec, c);
      const p = spec.parallel;
      const req: ParallelRequest = {
        tpSize: p.tp,
        tpRank: spec.bad === 'tp-rank-out-of-range' ? p.tp : 0,
        epSize: p.ep,
        epRank: spec.bad === 'ep-rank-out-of-range' ? p.ep : 0,
        epPlacement: p.placement,
      };
      return expectRefusal(() => target.loader.load(dir, req), `an invalid request (${spec.bad}: ${rankName(req)})`, c.outputs);
    }
  }
}

async function checkLoad(g: Generated, dir: string, p: ParallelSpec, target: Target, ctx: CaseContext, seed: number): Promise<CaseOutcome> {
  const ranks = await loadRanks(target.loader, dir, p);
  const quant = g.dims.quant;
  for (const { req, tensors } of ranks) {
    ctx.outputs.push([`rank-tp${req.tpRank}-ep${req.epRank}`, tensors]);
    const d = diffCanonical(inFormOf(await ctx.reference.load(dir, req), tensors, quant, req), tensors, rankName(req));
    if (d) return fail(d);
  }
  // The ranks together hold every weight once: rebuilt, they are the whole checkpoint.
  const whole = await ctx.reference.load(dir, WHOLE);
  let rebuilt: Canonical;
  try {
    rebuilt = reassemble(ranks, quant, g.dims.features.nonGated !== true);
  } catch (e) {
    return fail({ message: `ranks do not reassemble: ${(e as Error).message}` });
  }
  const d = diffCanonical(inFormOf(whole, rebuilt, quant, WHOLE), rebuilt, 'the ranks reassembled (found) vs the whole checkpoint');
  if (d) return fail(d);

  // The forward of the summed ranks equals the forward of the whole weights.
  const sem = semanticsOf(g.config);
  const tokens = ctx.tokens ?? 1 + ((seed >>> 8) % 24);
  const x = Float32Array.from(normals(xoshiro128ss(seed ^ 0x1f0), tokens * sem.hidden, 1));
  let warned: string | undefined;
  for (const layer of sem.moeLayers) {
    const want = referenceForward(sem, layer, [{ req: WHOLE, tensors: whole }], x, tokens, { bound: true });
    const got = referenceForward(sem, layer, ranks, x, tokens);
    const v = forwardVerdict(want, got.output, tokens, `layer ${layer}: forward of the summed ranks vs the unsharded forward`);
    if (v.status === 'fail') return v;
    if (target.forward) {
      const fast = await target.forward.forward(sem, layer, ranks, x, tokens);
      const ties = findRoutingTies(want.routing.scores, want.bounds!.logits, tokens, sem.experts, sem.topK);
      const w = forwardVerdict(want, fast.output, tokens, `layer ${layer}: ${target.forward.name} forward of the ranks vs the float64 reference`, ties);
      if (w.status === 'fail') return w;
      if (w.status === 'warn') warned = w.note;
    }
  }
  // Loading is a function of its input: a second load gives the same bytes.
  const again = await target.loader.load(dir, ranks[0]!.req);
  const twice = diffCanonical(ranks[0]!.tensors, again, `${rankName(ranks[0]!.req)}: first load (expected) vs second load (found)`);
  if (twice) return fail(twice);
  return warned ? { status: 'warn', note: warned } : { status: 'pass' };
}

/**
 * The verdict of harness/compare/tolerance.ts as a case outcome, with the error by token and
 * column on failure. `ties` are tokens whose experts a float32 backend may legitimately pick otherwise.
 */
export function forwardVerdict(want: ReferenceResult, got: ArrayLike<number>, tokens: number, where: string, ties?: RoutingTie[]): CaseOutcome {
  const cols = want.output.length / tokens;
  const r = compareToBounds(got, want.output, want.bounds!, cols, { selected: want.selected, k: want.selected.length / tokens, ...(ties && { ties }) });
  if (r.tier === 'pass') return { status: 'pass' };
  const at = `max abs error ${r.maxAbs.value} at token ${r.maxAbs.row}, column ${r.maxAbs.col} (strict bound ${r.maxAbs.bound}); ${r.mismatches} of ${r.elements} beyond strict, ${r.failures} beyond loose${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`;
  if (r.tier === 'warn') return { status: 'warn', note: `${where}: ${at}` };
  const i = r.maxAbs.row * cols + r.maxAbs.col;
  return {
    status: 'fail',
    failure: {
      message: `${where}: beyond the tolerance: ${at}`,
      ...(i >= 0 && { expected: String(want.output[i]), found: String(got[i]) }),
      heatmap: Array.from({ length: tokens }, (_, t) => Array.from({ length: cols }, (_, c) => Math.abs(got[t * cols + c]! - want.output[t * cols + c]!))),
      heatmapAxes: ['token', 'column'],
    },
  };
}

/** A refusal is a typed error from the loader; a crash, a timeout or unreadable output is not one. */
async function expectRefusal(load: () => Promise<Canonical>, what: string, outputs: Array<[string, Canonical]>): Promise<CaseOutcome> {
  let accepted: Canonical;
  try {
    accepted = await load();
  } catch (e) {
    if (e instanceof LoaderCrashed || e instanceof LoaderTimedOut || e instanceof LoaderOutputInvalid) {
      return fail({ message: `${what} must be refused with a non-zero exit and a reason, but the loader failed otherwise: ${e.name}: ${e.message}` });
    }
    if (e instanceof MoeConformanceError) return { status: 'pass' };
    return fail({ message: `${what} must be refused with a typed error, but the loader crashed: ${(e as Error)?.stack ?? String(e)}` });
  }
  outputs.push(['accepted', accepted]);
  return fail({ message: `${what} was silently accepted: the loader returned ${plural(accepted.size, 'tensor')} instead of refusing`, expected: 'refusal', found: plural(accepted.size, 'tensor') });
}

async function keep(spec: CaseSpec, c: CaseContext, root: string): Promise<void> {
  const target = join(root, specIdText(spec).replace(/[^A-Za-z0-9_.=-]+/g, '_'));
  await mkdir(target, { recursive: true });
  for (const [name, dir] of c.used) await cp(dir, join(target, name), { recursive: true });
  for (const [name, tensors] of c.outputs) await writeSafetensors(join(target, `loader-output-${name}.safetensors`), tensors);
}
