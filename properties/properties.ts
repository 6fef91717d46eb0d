// The properties of spec §3, for any Loader (and optionally a forward backend), one
// branch per case kind. Each writes the case's checkpoint (or takes it from a shared
// store), asks the loader for every rank, and compares with the reference loader and kernels:
//   load    every rank bit-exact; the ranks reassemble the whole; the forward of the
//           summed ranks equals the unsharded forward (and the backend under test agrees
//           with the reference); loading twice gives the same bytes
//   layout  original and fused saves of the same weights load to the same bytes
//   refuse  a broken checkpoint is refused (exiting 0 with tensors is the worst failure)
//   request an invalid request (I % T != 0, P > E, rank out of range) is refused
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isReasonedRefusal, LoaderCrashed, LoaderOutputInvalid, LoaderRefused, LoaderTimedOut, loaderStderr } from '../harness/protocol/command-loader.js';
import { failureOf, type CaseFailure, type CaseOutcome } from '../harness/conformance/results.js';
import type { Diagnosis } from '../harness/compare/diagnose.js';
import { unindexedFileRead } from '../harness/compare/unindexed-file.js';
import type { QuantGeometry } from '../harness/layouts/ops.js';
import { MoeConformanceError } from '../harness/errors.js';
import { semanticsOf } from '../harness/quant/layout.js';
import { referenceLoader } from '../harness/loader/load.js';
import { inFormOf } from '../harness/quant/dequantize.js';
import { writeSafetensors } from '../harness/safetensors/write.js';
import { rankName, ranksName, WHOLE, wrapLoader, type Canonical, type Loader, type ParallelRequest } from '../harness/tensor.js';
import { xoshiro128ss, normals } from '../harness/canonical/random.js';
import type { MoeBackend } from '../kernels/backend.js';
import { loadRanks } from '../kernels/ranks.js';
import { FormMismatch, NO_FORMS, slotOrigin, toCanonicalRanks, type FormDims, type FormSet, type RankOutput } from '../harness/canonical/forms.js';
import type { RankTensors } from '../kernels/backend.js';
import { referenceForward, type ReferenceResult } from '../kernels/moe.js';
import { compareToBounds, findRoutingTies, type RoutingTie } from '../harness/compare/tolerance.js';
import { diffCanonical, notingSlot } from './diff.js';
import { diagnoseForward } from './diagnose-forward.js';
import { writeBroken, writeCheckpoint, type Defect, type Generated } from './materialize.js';
import { reassemble } from './reassemble.js';
import { specIdText, specSeed, type CaseSpec, type Layout, type ParallelSpec } from './spec.js';
import { privateStore, type CheckpointStore } from './checkpoint-store.js';
import { plural } from '../harness/errors.js';

export interface Target {
  loader: Loader;
  /** A forward backend under test, compared with the float64 reference on the loader's ranks. */
  forward?: MoeBackend;
  /** The engine forms the loader declares (spec §8): its ranks are mapped to the canonical form before any comparison. */
  forms?: FormSet;
}

/** `where` of a comparison, saying when the loader's ranks were mapped from its declared forms. */
export const formsNote = (forms: FormSet | undefined) => (forms?.names.length ? ` (declared forms ${forms.names.join(', ')} mapped to the canonical form)` : '');

/**
 * The loader's ranks in the canonical form: as they are without declared forms, else mapped
 * back (spec §8). A rank that breaks its declared form is a failure naming tensor, rank, expected and found.
 */
export function canonicalRanks(raw: RankTensors[], forms: FormSet | undefined, dims: FormDims): RankOutput[] | CaseOutcome {
  try {
    return toCanonicalRanks(forms ?? NO_FORMS, raw, dims);
  } catch (e) {
    if (e instanceof FormMismatch) return { status: 'fail', failure: failureOf(e) };
    throw e;
  }
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

export { rankName };
const fail = (failure: CaseFailure): CaseOutcome => ({ status: 'fail', failure });

/** Bytes of the loaders' stderr a case keeps (the tail), over all its calls. */
const STDERR_TAIL = 8 * 1024;

/** Runs one case against a target. An error thrown by the loader is a failure naming the call (rank, layout) that threw it. */
export async function checkCase(spec: CaseSpec, target: Target, ctx: PropertyContext): Promise<CaseOutcome> {
  await mkdir(ctx.workDir, { recursive: true });
  const dir = await mkdtemp(join(ctx.workDir, 'case-'));
  const c: CaseContext = { ...ctx, store: ctx.checkpoints ?? privateStore(dir), reference: ctx.reference ?? referenceLoader, used: [], outputs: [], references: [], stderr: [], dirLayouts: new Map() };
  try {
    let outcome: CaseOutcome;
    const watched = observed(target, (dir) => c.dirLayouts.get(dir), c.stderr);
    // On valid input the loader's errors are marked as its own (refused-valid-request), not the harness's.
    const valid = spec.kind === 'load' || spec.kind === 'layout';
    try {
      outcome = await dispatch(spec, valid ? { ...watched, loader: marked(watched.loader) } : watched, c);
    } catch (e) {
      outcome = e instanceof LoaderFailedOnValidInput ? failedOnValid(e) : fail({ ...failureOf(e), ...callOf(e), ...(c.defect && { defect: c.defect.detail }) });
    }
    outcome = diagnosed(outcome);
    const stderr = stderrTail(c.stderr);
    if (stderr) outcome = { ...outcome, stderr };
    if (ctx.keepFailures && outcome.status === 'fail') outcome = await keep(spec, c, ctx.keepFailures, outcome);
    else if (outcome.status === 'fail') outcome = { ...outcome, failure: retext(outcome.failure, (text) => unkept(text, c.used)) };
    return outcome;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface CaseContext extends PropertyContext {
  store: CheckpointStore;
  reference: Loader;
  /** Checkpoint folders the case used, by name, and the loader's outputs: what --keep-failures keeps. */
  used: Array<[string, string]>;
  outputs: Array<[string, Canonical]>;
  /** The reference loader's outputs the loader's were compared with, by the same names. */
  references: Array<[string, Canonical]>;
  /** The loader's stderr, call by call (`[layout, rank] text`). */
  stderr: string[];
  /** The broken checkpoint's defect (refuse cases). */
  defect?: Defect;
  /** The layout of each checkpoint folder the case uses, to name it in a failure. */
  dirLayouts: Map<string, string>;
}

/** The loader call an error came from: which rank, which layout. */
const calls = new WeakMap<object, { rank: string; layout: string }>();

/** The rank and layout of the loader call that threw `e` (through `observed`), to put in the failure. */
export function callOf(e: unknown): { rank?: string; layout?: string } {
  return (typeof e === 'object' && e !== null && calls.get(e)) || {};
}


/** The target's loader, adding each call's stderr to `stderr` and naming the call (rank, layout of `dir`) in any error it throws. */
export function observed(target: Target, layoutOf: (dir: string) => string | undefined, stderr: string[]): Target {
  const loader = wrapLoader(target.loader, async (dir, reqs, call) => {
    const layout = layoutOf(dir) ?? 'unknown layout';
    const rank = ranksName(reqs);
    try {
      const outs = await call();
      for (const [i, out] of outs.entries()) {
        const err = loaderStderr(out);
        if (err) stderr.push(`[${layout}, ${rankName(reqs[i]!)}] ${err.trimEnd()}`);
      }
      return outs;
    } catch (e) {
      if (e instanceof LoaderRefused && e.stderr.trim()) stderr.push(`[${layout}, ${rank}] ${e.stderr.trimEnd()}`);
      if (typeof e === 'object' && e !== null && !calls.has(e)) calls.set(e, { rank, layout });
      throw e;
    }
  });
  return { ...target, loader };
}

/** The last STDERR_TAIL characters of the loader's stderr over a case's calls (undefined: it wrote nothing). */
export function stderrTail(parts: readonly string[]): string | undefined {
  const all = parts.join('\n');
  if (!all.trim()) return undefined;
  return all.length > STDERR_TAIL ? `[... earlier stderr dropped ...]\n${all.slice(-STDERR_TAIL)}` : all;
}

/** The case's checkpoint in `layout` (default the spec's), with the spec's defect unless `valid` (the control twin). */
async function checkpointOf(spec: CaseSpec, c: CaseContext, layout: Layout = spec.checkpoint.layout, valid = false): Promise<{ dir: string; value: Generated | undefined }> {
  const seed = specSeed(spec);
  const broken = spec.kind === 'refuse' && !valid ? spec.broken : undefined;
  const key = `${seed}|${specIdText(spec).replace(/^moe:\w+:/, '').replace(/;(tp|ep|placement|bad|broken)=[^;]*/g, '')}|${layout}|${broken ?? 'valid'}`;
  const got = await c.store.checkpoint<Generated | Defect>(key, (dir) => (broken ? writeBroken(spec.checkpoint, seed, broken, dir) : writeCheckpoint({ ...spec.checkpoint, layout }, seed, dir)));
  c.dirLayouts.set(got.dir, layout);
  c.used.push([`checkpoint-${layout}${broken ? '-broken' : valid && spec.kind === 'refuse' ? '-valid-twin' : ''}`, got.dir]);
  if (broken) {
    c.defect = got.value as Defect;
    return { dir: got.dir, value: undefined };
  }
  return { dir: got.dir, value: got.value as Generated };
}

/**
 * The control of a refusal case: the valid twin (same model, sizes, layout and files, no
 * defect; for an invalid request, the whole-model request) must load. If the loader refuses
 * it too, it cannot load this checkpoint at all and its refusal of the broken one proves
 * nothing: the case is inconclusive, never a pass.
 */
async function control(spec: CaseSpec, target: Target, c: CaseContext): Promise<CaseOutcome | undefined> {
  const { dir } = await checkpointOf(spec, c, spec.checkpoint.layout, true);
  try {
    const out = await target.loader.load(dir, WHOLE);
    c.outputs.push(['control-valid-twin', out]);
    return undefined;
  } catch (e) {
    // A crash, a timeout or garbage on the valid twin is no refusal: the loader failed on valid input.
    if (e instanceof LoaderCrashed || e instanceof LoaderTimedOut || e instanceof LoaderOutputInvalid || !(e instanceof MoeConformanceError)) {
      return failedOnValid(new LoaderFailedOnValidInput(e));
    }
    // The loader's own reason: the last line it wrote on stderr, else the error's first line.
    const said = e instanceof LoaderRefused ? e.stderr.trim().split('\n').at(-1) : undefined;
    const why = `${(e as Error)?.name ?? 'error'}: ${e instanceof Error ? firstLine(e.message) : String(e)}${said ? `: ${said.trim()}` : ''}`;
    return {
      status: 'inconclusive',
      note: `the loader also refused the valid twin (${spec.checkpoint.layout} layout, ${rankName(WHOLE)}): ${why}; its refusal of the ${spec.kind === 'refuse' ? 'broken checkpoint' : 'invalid request'} proves nothing`,
    };
  }
}

const firstLine = (s: string) => s.split('\n', 1)[0]!;

/** The ranks an invalid request is asked of: every rank of the bad split (P > E, T not dividing), or the one rank out of range. */
export function badRequestRanks(spec: Extract<CaseSpec, { kind: 'request' }>): ParallelRequest[] {
  const p = spec.parallel;
  const req = (tpRank: number, epRank: number): ParallelRequest => ({ tpSize: p.tp, tpRank, epSize: p.ep, epRank, epPlacement: p.placement });
  if (spec.bad === 'tp-rank-out-of-range') return [req(p.tp, 0)];
  if (spec.bad === 'ep-rank-out-of-range') return [req(0, p.ep)];
  const all: ParallelRequest[] = [];
  for (let t = 0; t < p.tp; t++) for (let q = 0; q < p.ep; q++) all.push(req(t, q));
  return all;
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
      const rawOriginal = await loadRanks(target.loader, ckpt, spec.parallel);
      const rawFused = await loadRanks(target.loader, fusedDir, spec.parallel);
      for (const [i, { req, tensors }] of rawOriginal.entries()) {
        c.outputs.push([`original-tp${req.tpRank}-ep${req.epRank}`, tensors], [`fused-tp${req.tpRank}-ep${req.epRank}`, rawFused[i]!.tensors]);
      }
      const original = canonicalRanks(rawOriginal, target.forms, value!.dims);
      if (!Array.isArray(original)) return original;
      const fused = canonicalRanks(rawFused, target.forms, value!.dims);
      if (!Array.isArray(fused)) return fused;
      const note = formsNote(target.forms);
      const whole = await c.reference.load(ckpt, WHOLE);
      for (const [i, { req, tensors }] of original.entries()) {
        const context = { req, whole: inFormOf(whole, tensors, value?.dims.quant, WHOLE), ...(value?.dims.quant && { quantized: value.dims.quant.method }) };
        const d = diffCanonical(tensors, fused[i]!.tensors, `${rankName(req)}: original (expected) vs fused (found) layout${note}`, context);
        if (d) return fail({ ...d, rank: rankName(req), layout: 'fused (vs original)' });
        const stored = await c.reference.load(ckpt, req);
        const want = inFormOf(stored, tensors, value?.dims.quant, req);
        c.references.push([`original-tp${req.tpRank}-ep${req.epRank}`, want]);
        const quant = value?.dims.quant;
        const r = notingSlot(diffCanonical(want, tensors, `${rankName(req)}: vs the reference${note}`, { ...context, ...(quant && { stored: { scheme: quant, tensors: stored } }) }), want, tensors, (t, slot) => slotOrigin(original[i]!, t, slot));
        if (r) return fail({ ...r, rank: rankName(req), layout: 'original' });
      }
      return { status: 'pass' };
    }
    case 'refuse': {
      const inconclusive = await control(spec, target, c);
      if (inconclusive) return inconclusive;
      const { dir } = await checkpointOf(spec, c);
      const defect = c.defect!;
      const outcome = await expectRefusal(() => target.loader.load(dir, WHOLE), `a checkpoint with a ${spec.broken} defect (${defect.detail})`, c.outputs, 'accepted-broken-checkpoint');
      return outcome.status === 'fail' ? fail({ ...outcome.failure, rank: rankName(WHOLE), layout: spec.checkpoint.layout, defect: defect.detail }) : outcome;
    }
    case 'request': {
      const inconclusive = await control(spec, target, c);
      if (inconclusive) return inconclusive;
      const { dir } = await checkpointOf(spec, c);
      for (const req of badRequestRanks(spec)) {
        const outcome = await expectRefusal(() => target.loader.load(dir, req), `an invalid request (${spec.bad}: ${rankName(req)})`, c.outputs, 'accepted-invalid-request');
        if (outcome.status === 'fail') return fail({ ...outcome.failure, rank: rankName(req), layout: spec.checkpoint.layout });
      }
      return { status: 'pass' };
    }
  }
}

async function checkLoad(g: Generated, dir: string, p: ParallelSpec, target: Target, ctx: CaseContext, seed: number): Promise<CaseOutcome> {
  const raw = await loadRanks(target.loader, dir, p);
  const quant = g.dims.quant;
  const layout = ctx.dirLayouts.get(dir) ?? 'unknown layout';
  for (const { req, tensors } of raw) ctx.outputs.push([`rank-tp${req.tpRank}-ep${req.epRank}`, tensors]);
  // Everything below compares and sums canonical ranks: declared engine forms are mapped back first.
  const ranks = canonicalRanks(raw, target.forms, g.dims);
  if (!Array.isArray(ranks)) return ranks;
  const note = formsNote(target.forms);
  const whole = await ctx.reference.load(dir, WHOLE);
  for (const r of ranks) {
    const { req, tensors } = r;
    const stored = await ctx.reference.load(dir, req);
    const want = inFormOf(stored, tensors, quant, req);
    ctx.references.push([`rank-tp${req.tpRank}-ep${req.epRank}`, want]);
    const d = notingSlot(diffCanonical(want, tensors, `${rankName(req)}${note}`, { req, whole: inFormOf(whole, tensors, quant, WHOLE), ...(quant && { quantized: quant.method, stored: { scheme: quant, tensors: stored } }) }), want, tensors, (t, slot) => slotOrigin(r, t, slot));
    if (d) return fail({ ...(g.decoy ? await decoyDiagnosis(d, want, tensors, dir, g.decoy.files, req, ctx, quant) : d), rank: rankName(req), layout });
  }
  // The ranks together hold every weight once: rebuilt, they are the whole checkpoint.
  let rebuilt: Canonical;
  try {
    rebuilt = reassemble(ranks, quant, g.dims.features.nonGated !== true);
  } catch (e) {
    return fail({ message: `ranks do not reassemble: ${(e as Error).message}` });
  }
  const wholeForm = inFormOf(whole, rebuilt, quant, WHOLE);
  const d = diffCanonical(wholeForm, rebuilt, `the ranks reassembled (found) vs the whole checkpoint${note}`, { req: WHOLE, whole: wholeForm, ...(quant && { quantized: quant.method }) });
  if (d) return fail({ ...d, rank: `every rank of TP ${p.tp} × EP ${p.ep} ${p.placement}, reassembled`, layout });

  // The forward of the summed ranks equals the forward of the whole weights.
  const sem = semanticsOf(g.config);
  const tokens = ctx.tokens ?? 1 + ((seed >>> 8) % 24);
  const x = Float32Array.from(normals(xoshiro128ss(seed ^ 0x1f0), tokens * sem.hidden, 1));
  let warned: string | undefined;
  // Hash-routed layers (deepseek_v4) choose experts by token id: random ids inside the table.
  // zaya's MLP router adds the state carried from the previous layer: N(0, 1) here.
  const ids = xoshiro128ss(seed ^ 0x7a1);
  const inputs = sem.hash || sem.mlpRouter ? {
    ...(sem.hash && { tokenIds: Array.from({ length: tokens }, () => Math.floor(ids() * sem.hash!.vocab)) }),
    ...(sem.mlpRouter && { routerState: normals(ids, tokens * sem.mlpRouter.hidden, 1) }),
  } : undefined;
  const opts = inputs ? { inputs } : {};
  for (const layer of sem.moeLayers) {
    const want = referenceForward(sem, layer, [{ req: WHOLE, tensors: whole }], x, tokens, { bound: true, ...opts });
    const got = referenceForward(sem, layer, ranks, x, tokens, opts);
    const v = forwardVerdict(want, got.output, tokens, `layer ${layer}: forward of the summed ranks vs the unsharded forward`);
    if (v.status === 'fail') return v;
    if (target.forward) {
      const fast = await target.forward.forward(sem, layer, ranks, x, tokens, inputs);
      const ties = findRoutingTies(want.routing.scores, want.bounds!.logits, tokens, sem.experts, sem.topK);
      const w = forwardVerdict(want, fast.output, tokens, `layer ${layer}: ${target.forward.name} forward of the ranks vs the float64 reference`, ties);
      if (w.status === 'fail') return fail({ ...w.failure, diagnosis: diagnoseForward(sem, layer, ranks, x, tokens, fast.output, target.forward.name, inputs) });
      if (w.status === 'warn') warned = w.note;
    }
  }
  // Loading is a function of its input: a second load gives the same bytes.
  const again = await target.loader.load(dir, raw[0]!.req);
  const twice = diffCanonical(raw[0]!.tensors, again, `${rankName(raw[0]!.req)}: first load (expected) vs second load (found)`);
  if (twice) return fail({ ...twice, rank: rankName(raw[0]!.req), layout });
  return warned ? { status: 'warn', note: warned } : { status: 'pass' };
}

/**
 * A rank of a decoy case (spec.decoy) that differs from the reference: where its tensors are
 * those of the decoy files the index does not name, the diagnosis says so
 * (`unindexed-file-read`, first, in place of what the search found for those tensors). The
 * decoy's rank is what the reference loads from a folder of config.json and one decoy file.
 */
async function decoyDiagnosis(f: CaseFailure, want: Canonical, found: Canonical, dir: string, files: readonly string[], req: ParallelRequest, ctx: CaseContext, quant: QuantGeometry | undefined): Promise<CaseFailure> {
  const { dir: view } = await ctx.store.checkpoint(`decoy-view|${dir}`, async (v) => {
    await symlink(join(dir, 'config.json'), join(v, 'config.json'));
    await symlink(join(dir, files[0]!), join(v, 'model.safetensors'));
  });
  const decoy = inFormOf(await ctx.reference.load(view, req), found, quant, req);
  const read = unindexedFileRead(want, found, decoy, files);
  if (read.length === 0) return f;
  const explained = new Set(read.map((x) => x.tensor));
  return { ...f, diagnosis: [...read, ...(f.diagnosis ?? []).filter((x) => !explained.has(x.tensor))] };
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

/**
 * A refusal (spec §2.1) is a typed error from the loader; from a command, a non-zero exit with
 * a reason on stderr. A crash, a timeout, unreadable output or a wordless exit is not one.
 */
async function expectRefusal(load: () => Promise<Canonical>, what: string, outputs: Array<[string, Canonical]>, accepted: 'accepted-broken-checkpoint' | 'accepted-invalid-request'): Promise<CaseOutcome> {
  let tensors: Canonical;
  const crashed = (detail: string): Diagnosis[] => [{ tensor: '', kind: 'loader-crashed', detail }];
  try {
    tensors = await load();
  } catch (e) {
    if (e instanceof LoaderCrashed || e instanceof LoaderTimedOut || e instanceof LoaderOutputInvalid) {
      return fail({ message: `${what} must be refused with a non-zero exit and a reason, but the loader failed otherwise: ${e.name}: ${e.message}`, diagnosis: crashed(`${e.name} instead of a refusal of ${what}`) });
    }
    if (e instanceof LoaderRefused && !isReasonedRefusal(e)) {
      return fail({ message: `${what} was refused (exit ${e.exitCode}) without a reason on stderr: spec §2.1 counts a refusal only with a reason`, expected: 'a non-zero exit and a reason on stderr', found: `exit ${e.exitCode}, empty stderr` });
    }
    if (e instanceof MoeConformanceError) return { status: 'pass' };
    return fail({ message: `${what} must be refused with a typed error, but the loader crashed: ${(e as Error)?.stack ?? String(e)}`, diagnosis: crashed(`an untyped ${(e as Error)?.name ?? 'error'} instead of a refusal of ${what}`) });
  }
  outputs.push(['accepted', tensors]);
  return fail({
    message: `${what} was silently accepted: the loader returned ${plural(tensors.size, 'tensor')} instead of refusing`,
    expected: 'refusal',
    found: plural(tensors.size, 'tensor'),
    diagnosis: [{ tensor: '', kind: accepted, detail: `${what} answered with ${plural(tensors.size, 'tensor')} and exit 0` }],
  });
}

/**
 * Every failure carries a diagnosis (README "What a failure says"): one that no search
 * explained — a loader output refused before any comparison, a forward that differs with
 * every tensor exact — gets `unknown` with what happened (spec §6: the harness never guesses).
 */
export function diagnosed(outcome: CaseOutcome): CaseOutcome {
  if (outcome.status !== 'fail' || outcome.failure.diagnosis?.length) return outcome;
  const f = outcome.failure;
  return { ...outcome, failure: { ...f, diagnosis: [{ tensor: f.tensor ?? '', kind: 'unknown', detail: firstLine(f.message) }] } };
}

/** A failure with `edit` applied to every text a report prints of it: the message, expected and found, the diagnosis' details. */
function retext(f: CaseFailure, edit: (text: string) => string): CaseFailure {
  return {
    ...f,
    message: edit(f.message),
    ...(f.expected !== undefined && { expected: edit(f.expected) }),
    ...(f.found !== undefined && { found: edit(f.found) }),
    ...(f.diagnosis && { diagnosis: f.diagnosis.map((d) => ({ ...d, detail: edit(d.detail) })) }),
  };
}

/** Paths of the case's checkpoints in a failure, which the run removes: said so, with how to keep them. */
function unkept(message: string, used: ReadonlyArray<[string, string]>): string {
  return used.reduce((m, [name, dir]) => m.split(dir).join(`<${name}: removed after the run; --keep-failures DIR keeps it>`), message);
}

/**
 * --keep-failures: the case's checkpoints (broken and valid twin), the loader's outputs, the
 * reference outputs they were compared with, and reason.txt, in a folder named after the
 * case. Paths in the failure that pointed into the run's temporary folder point here instead.
 */
async function keep(spec: CaseSpec, c: CaseContext, root: string, outcome: Extract<CaseOutcome, { status: 'fail' }>): Promise<CaseOutcome> {
  const id = specIdText(spec);
  const target = join(root, id.replace(/[^A-Za-z0-9_.=-]+/g, '_'));
  await mkdir(target, { recursive: true });
  const moved: Array<[string, string]> = [];
  for (const [name, dir] of c.used) {
    await cp(dir, join(target, name), { recursive: true });
    moved.push([dir, join(target, name)]);
  }
  for (const [name, tensors] of c.outputs) await writeSafetensors(join(target, `loader-output-${name}.safetensors`), tensors);
  for (const [name, tensors] of c.references) await writeSafetensors(join(target, `reference-output-${name}.safetensors`), tensors);
  const relocate = (text: string) => moved.reduce((t, [from, to]) => t.split(from).join(to), text);
  let reference = '';
  if (spec.kind === 'refuse') {
    const broken = moved.find(([, to]) => to.endsWith('-broken'))?.[1];
    reference = broken ? await c.reference.load(broken, WHOLE).then(
      (t) => `the reference loader ACCEPTED the broken checkpoint (${t.size} tensors)`,
      (e: Error) => `the reference loader refuses the broken checkpoint: ${e.name}: ${relocate(e.message)}`,
    ) : '';
  }
  const f = outcome.failure;
  const lines = [
    `case:     ${id}`,
    `status:   ${outcome.status}`,
    `reason:   ${relocate(f.message)}`,
    ...(f.rank ? [`rank:     ${f.rank}`] : []),
    ...(f.layout ? [`layout:   ${f.layout}`] : []),
    ...(f.tensor ? [`tensor:   ${f.tensor}`] : []),
    ...(f.expected ? [`expected: ${f.expected}`] : []),
    ...(f.found ? [`found:    ${f.found}`] : []),
    ...(c.defect ? [`defect:   ${c.defect.broken}: ${c.defect.detail}`] : []),
    ...(reference ? [`reference: ${reference}`] : []),
    `files:    ${moved.map(([, to]) => to).join(', ')}; loader-output-*.safetensors (the loader's), reference-output-*.safetensors (the expected)`,
    ...(outcome.stderr ? ['--- loader stderr (tail) ---', outcome.stderr] : []),
  ];
  await writeFile(join(target, 'reason.txt'), lines.join('\n') + '\n');
  return { ...outcome, failure: { ...retext(f, relocate), kept: target } };
}

/** Thrown by the target's loader on a valid case: a refusal (or crash) where tensors are due. */
class LoaderFailedOnValidInput extends Error {
  constructor(readonly error: unknown) {
    super('the loader failed on a valid checkpoint and request');
  }
}

/** The loader under test, with its errors on valid input marked as its own (not the harness's). */
function marked(loader: Loader): Loader {
  return wrapLoader(loader, async (_dir, _reqs, call) => {
    try {
      return await call();
    } catch (e) {
      throw new LoaderFailedOnValidInput(e);
    }
  });
}

/** A valid checkpoint and request the loader did not serve: refused, or crashed. */
function failedOnValid(e: LoaderFailedOnValidInput): CaseOutcome {
  const cause = e.error;
  const failure = failureOf(cause);
  const crashed = cause instanceof LoaderCrashed || cause instanceof LoaderTimedOut || cause instanceof LoaderOutputInvalid || !(cause instanceof MoeConformanceError);
  const detail = crashed ? `${(cause as Error)?.name ?? 'error'} on a valid checkpoint and request` : `refused a valid checkpoint and request: ${firstLine(failure.message)}`;
  return fail({ ...failure, ...callOf(cause), diagnosis: [{ tensor: failure.tensor ?? '', kind: crashed ? 'loader-crashed' : 'refused-valid-request', detail }] });
}
