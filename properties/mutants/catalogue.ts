// Deliberately wrong loaders, one per realistic bug of spec/layouts.md §3. Each wraps the
// reference loader and corrupts its output exactly the way the bug would, so a test can
// prove the suite catches it (and count how many generated cases that took).
import { ModelConfig } from '../../harness/checkpoint/config.js';
import { semanticsOf } from '../../harness/quant/layout.js';
import { expertsOf, tpSlice } from '../../harness/canonical/cut.js';
import { referenceLoader } from '../../harness/loader/load.js';
import { decodeFloats64, encodeFloats } from '../../harness/safetensors/codecs.js';
import type { Canonical, Loader, ParallelRequest, Tensor } from '../../harness/tensor.js';
import { memoLoader, recent } from '../memo.js';
import { int32s, int32Tensor, permuteRows, pickSlots, selectRows, transposeSquare } from './tensor-ops.js';

export interface Mutant {
  name: string;
  /** The bug, as it happens in a real loader. */
  bug: string;
  loader: Loader;
}

export interface Model {
  modelType: string;
  hidden: number;
  intermediate: number;
  sharedIntermediate: number;
  experts: number;
}

const models = recent<Model>(64);
/** The reference's tensors, shared by all mutants: callers copy a map before changing it. */
const reference = memoLoader(referenceLoader, 256);

export function modelOf(dir: string): Promise<Model> {
  return models(dir, async () => {
    const sem = semanticsOf(await ModelConfig.read(dir));
    return { modelType: sem.modelType, hidden: sem.hidden, intermediate: sem.intermediate, sharedIntermediate: sem.sharedIntermediate, experts: sem.experts };
  });
}

export const load = (dir: string, req: ParallelRequest) => reference.load(dir, req);
const layersOf = (c: Canonical) => [...new Set([...c.keys()].map((k) => Number(/^layers\.(\d+)\./.exec(k)?.[1])))].filter((n) => !Number.isNaN(n));

/** A mutant whose loader is `load` under the mutant's own name. */
function mutant(name: string, bug: string, load: Loader['load']): Mutant {
  return { name, bug, loader: { name, load } };
}

/** Applies `fix` to every tensor whose name ends with `suffix`. */
function mapTensors(c: Canonical, suffix: string, fix: (t: Tensor, name: string) => Tensor): Canonical {
  const out: Canonical = new Map(c);
  for (const [name, t] of c) if (name.endsWith(suffix)) out.set(name, fix(t, name));
  return out;
}

/** The correct TP rows of a gate-then-up tensor cut from its whole `[2*I, ...]` form. */
function gateUpRows(size: number, req: ParallelRequest): Array<[number, number]> {
  const [a, b] = tpSlice(size, req.tpSize, req.tpRank);
  return [
    [a, b],
    [size + a, size + b],
  ];
}

/** A mutant that loads the whole TP extent of the rank's experts, corrupts it, then cuts TP correctly. */
function fromTpWhole(name: string, bug: string, corrupt: (whole: Canonical, m: Model) => Canonical): Mutant {
  return mutant(name, bug, async (dir, req) => {
    const m = await modelOf(dir);
    const whole = corrupt(await load(dir, { ...req, tpSize: 1, tpRank: 0 }), m);
    if (req.tpSize === 1) return whole;
    let out = mapTensors(whole, 'experts.w13', (t) => selectRows(t, gateUpRows(m.intermediate, req), true));
    out = mapTensors(out, 'experts.w13_bias', (t) => selectRows(t, gateUpRows(m.intermediate, req), true));
    out = mapTensors(out, 'experts.w2', (t) => cutColumns(t, req));
    out = mapTensors(out, 'shared.w13', (t) => selectRows(t, gateUpRows(m.sharedIntermediate, req), false));
    return mapTensors(out, 'shared.w2', (t) => cutColumns(t, req));
  });
}

/** The TP rank's columns (last axis). */
function cutColumns(t: Tensor, req: ParallelRequest): Tensor {
  const cols = t.shape[t.shape.length - 1]!;
  const [a, b] = tpSlice(cols, req.tpSize, req.tpRank);
  const flatRows = t.shape.slice(0, -1).reduce((x, y) => x * y, 1);
  const e = t.bytes.length / (flatRows * cols);
  const out = new Uint8Array(flatRows * (b - a) * e);
  for (let r = 0; r < flatRows; r++) out.set(t.bytes.subarray((r * cols + a) * e, (r * cols + b) * e), r * (b - a) * e);
  return { dtype: t.dtype, shape: [...t.shape.slice(0, -1), b - a], bytes: out };
}

/** A mutant that loads every expert of the rank's TP slice (EP 1), then places experts its own way. */
function fromEpWhole(name: string, bug: string, place: (all: Canonical, req: ParallelRequest, m: Model, layer: number) => number[]): Mutant {
  return mutant(name, bug, async (dir, req) => {
    const m = await modelOf(dir);
    const all = await load(dir, { ...req, epSize: 1, epRank: 0 });
    const out: Canonical = new Map(all);
    for (const L of layersOf(all)) {
      const slots = place(all, req, m, L);
      for (const [k, t] of all) if (k.startsWith(`layers.${L}.experts.`) && k !== `layers.${L}.experts.ids`) out.set(k, pickSlots(t, slots));
      out.set(`layers.${L}.experts.ids`, int32Tensor(slots.map((s) => int32s(all.get(`layers.${L}.experts.ids`)!)[s]!)));
    }
    return out;
  });
}

/** A mutant that corrupts the reference's output for the rank directly. */
function onOutput(name: string, bug: string, corrupt: (out: Canonical, req: ParallelRequest, m: Model) => Canonical): Mutant {
  return mutant(name, bug, async (dir, req) => corrupt(await load(dir, req), req, await modelOf(dir)));
}

/** Tensors ending in `suffix` cut for TP as one block of their gate-then-up axis, the rest as the reference does. */
function oneBlockCut(name: string, bug: string, suffix: string, stacked: boolean): Mutant {
  return mutant(name, bug, async (dir, req) => {
    const out = await load(dir, req);
    if (req.tpSize === 1) return out;
    const whole = await load(dir, { ...req, tpSize: 1, tpRank: 0 });
    const fixed = new Map(out);
    for (const [k, t] of whole) {
      if (!k.endsWith(suffix)) continue;
      const [a, b] = tpSlice(t.shape[stacked ? 1 : 0]!, req.tpSize, req.tpRank);
      fixed.set(k, selectRows(t, [[a, b]], stacked));
    }
    return fixed;
  });
}

const swapHalves = (t: Tensor, stacked: boolean) => {
  const rows = t.shape[stacked ? 1 : 0]!;
  return selectRows(t, [[rows / 2, rows], [0, rows / 2]], stacked);
};

export const MUTANTS: readonly Mutant[] = [
  onOutput('swapped-gate-up', 'gate and up halves swapped (up-first stacking, as TensorRT-LLM stores w3_w1, read as gate-first)', (out) =>
    mapTensors(mapTensors(out, 'experts.w13', (t) => swapHalves(t, true)), 'shared.w13', (t) => swapHalves(t, false)),
  ),
  oneBlockCut('fused-axis-cut-in-one-piece', 'TP cuts the fused 2I axis of w13 in one piece instead of cutting gate and up separately', 'experts.w13', true),
  fromTpWhole('transposed-read-when-h-eq-2i', 'a shape-guessing loader reads the transposed [E,H,2I] gate_up_proj as [E,2I,H] when H == 2I (transformers issue 47031)', (whole, m) =>
    (m.modelType === 'llama4_text' || m.modelType === 'gpt_oss') && m.hidden === 2 * m.intermediate ? mapTensors(whole, 'experts.w13', transposeSquare) : whole,
  ),
  fromTpWhole('interleaved-read-as-concatenated', 'gpt_oss gate/up interleaved on the 2I axis read as two concatenated halves (biases too)', (whole, m) => {
    if (m.modelType !== 'gpt_oss') return whole;
    // Stored rows g0 u0 g1 u1 ...; the bug takes the first half as gate: row i of the result is row 2i (mod 2I) of the truth's gate/up mix.
    const interleaved = (i: number, rows: number) => (i % 2 === 0 ? i / 2 : rows / 2 + (i - 1) / 2);
    return mapTensors(mapTensors(whole, 'experts.w13', (t) => permuteRows(t, interleaved, true)), 'experts.w13_bias', (t) => permuteRows(t, interleaved, true));
  }),
  fromEpWhole('ep-remainder-dropped', 'linear EP placement ignores E % P: every rank takes floor(E/P) experts from q*floor(E/P), the remainder experts are lost', (_all, req, m) => {
    const base = Math.floor(m.experts / req.epSize);
    return req.epPlacement === 'linear' ? Array.from({ length: base }, (_, i) => req.epRank * base + i) : expertsOf(m.experts, req.epSize, req.epRank, req.epPlacement);
  }),
  fromEpWhole('ep-ranks-reversed', 'EP rank q given the experts of rank P-1-q (start and end of the rank range swapped)', (_all, req, m) =>
    expertsOf(m.experts, req.epSize, req.epSize - 1 - req.epRank, req.epPlacement),
  ),
  fromEpWhole('expert-order-by-string', 'experts ordered by their key names as strings (expert 10 before expert 2)', (_all, req, m) => {
    const byString = Array.from({ length: m.experts }, (_, i) => i).sort((a, b) => (String(a) < String(b) ? -1 : 1));
    // Slot e holds the data of the e-th name in string order; the ids still read 0..E-1.
    return expertsOf(m.experts, req.epSize, req.epRank, req.epPlacement).map((e) => byString[e]!);
  }),
  onOutput('dropped-expert-as-zeros', 'the last expert of each layer silently loaded as zeros (its key names drifted and were not found)', (out, _req, m) => {
    const fixed = new Map(out);
    for (const L of layersOf(out)) {
      const slot = int32s(out.get(`layers.${L}.experts.ids`)!).indexOf(m.experts - 1);
      if (slot < 0) continue;
      for (const [k, t] of out) {
        if (!k.startsWith(`layers.${L}.experts.`) || k.endsWith('.ids')) continue;
        const bytes = t.bytes.slice();
        const per = bytes.length / t.shape[0]!;
        bytes.fill(0, slot * per, (slot + 1) * per);
        fixed.set(k, { ...t, bytes });
      }
    }
    return fixed;
  }),
  onOutput('w2-bias-divided-per-rank', 'w2_bias split over TP ranks (divided by T, for an engine that adds it on every rank) instead of whole on every rank', (out, req) =>
    req.tpSize === 1 ? out : mapTensors(out, 'experts.w2_bias', (t) => ({ ...t, bytes: encodeFloats(t.dtype, decodeFloats64(t.dtype, t.bytes).map((v) => v / req.tpSize)) })),
  ),
  oneBlockCut('w13-bias-cut-in-one-piece', 'the gate/up bias cut for TP in one piece while the weights are cut gate and up separately', 'experts.w13_bias', true),
  onOutput('correction-bias-ignored', 'the selection-only correction bias (e_score_correction_bias / expert_bias) not loaded', (out) => {
    const fixed = new Map(out);
    for (const k of out.keys()) if (k.endsWith('router.correction_bias')) fixed.delete(k);
    return fixed;
  }),
  onOutput('router-cut-by-ep', 'the router weight cut to the rank\'s own experts, as if EP split it', (out) => {
    const fixed = new Map(out);
    for (const L of layersOf(out)) {
      const ids = int32s(out.get(`layers.${L}.experts.ids`)!);
      const router = out.get(`layers.${L}.router.weight`)!;
      if (ids.length !== router.shape[0]) fixed.set(`layers.${L}.router.weight`, pickSlots(router, ids));
    }
    return fixed;
  }),
  oneBlockCut('shared-expert-fused-cut', 'the shared expert\'s fused gate/up cut for TP in one piece', 'shared.w13', false),
];
