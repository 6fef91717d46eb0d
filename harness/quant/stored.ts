// How quantized formats place their tensors beside a float layout's expert weights, as
// operation trees (../layouts/ops.ts), so that the loader and the writer handle them like any
// other layout. The formats (./formats/) compose these; nothing here knows a format.
import { concat, part, single, stackExperts, unsqueezeLeading, WHOLE_AXIS, type Composite, type Op, type PartName, type PartSizes, type QuantGeometry } from '../layouts/ops.js';
import type { ModuleLayout, TensorSpec } from '../layouts/registry.js';
import { QuantConfigError } from './errors.js';

type Projection = 'gate' | 'up' | 'down' | 'shared_gate_proj' | 'shared_up_proj' | 'shared_down_proj';
const PROJECTIONS: readonly Projection[] = ['gate', 'up', 'down'];
/** A shared expert's projections: quantized where the scheme says so (`sharedQuantized`). */
const SHARED_PROJECTIONS: readonly Projection[] = ['shared_gate_proj', 'shared_up_proj', 'shared_down_proj'];

/** One float-layout tensor that holds routed expert weights, by the form the formats know. */
export type ExpertTensor =
  /** One expert's projection `[out, in]` (`experts.{e}.gate_proj.weight`). */
  | { kind: 'projection'; spec: TensorSpec; part: Projection }
  /** `[E, 2I, H]`, gate rows then up rows (`experts.gate_up_proj`, granitemoe's `input_linear.weight`). */
  | { kind: 'fused-gate-up'; spec: TensorSpec }
  /** `[E, H, I]` (`experts.down_proj`). */
  | { kind: 'fused-down'; spec: TensorSpec }
  /** Transposed, interleaved or flattened: each format says whether it can store it. */
  | { kind: 'other'; spec: TensorSpec };

const PROBE: PartSizes = { experts: 2, hidden: 3, intermediate: 5, sharedIntermediate: 7 };
const same = (a: Composite, b: Composite) => JSON.stringify(a) === JSON.stringify(b);
const FUSED_GATE_UP = stackExperts(concat(0, part('gate'), part('up')))(PROBE);
const FUSED_DOWN = stackExperts(part('down'))(PROBE);

/** The tensor's form, or undefined where it holds no quantized weight (router, biases, and shared experts unless `shared`). */
export function classify(spec: TensorSpec, shared = false): ExpertTensor | undefined {
  const c = spec.op(PROBE);
  const projections = shared ? [...PROJECTIONS, ...SHARED_PROJECTIONS] : PROJECTIONS;
  if (!c.placements.some((p) => (projections as readonly string[]).includes(p.part))) return undefined;
  for (const p of projections) if (same(c, part(p)(PROBE))) return { kind: 'projection', spec, part: p };
  if (same(c, FUSED_GATE_UP)) return { kind: 'fused-gate-up', spec };
  if (same(c, FUSED_DOWN)) return { kind: 'fused-down', spec };
  return { kind: 'other', spec };
}

/** The float layout's quantized weight tensors (the routed experts', and the shared experts' where `s.sharedQuantized`), classified, and its other tensors. */
export function splitLayout(float: ModuleLayout, s?: QuantGeometry): { experts: ExpertTensor[]; rest: TensorSpec[] } {
  const experts: ExpertTensor[] = [];
  const rest: TensorSpec[] = [];
  for (const t of float.tensors) {
    const c = classify(t, s?.sharedQuantized === true);
    if (c) experts.push(c);
    else rest.push(t);
  }
  return { experts, rest };
}

/**
 * A companion's stored key: `X.weight` -> `X.<perExpert>` (`gate_proj.weight_scale`), any other
 * key `X` -> `X_<fused>` (`experts.gate_up_proj_weight_scale`).
 */
export function companionKey(key: string, perExpert: string, fused: string): string {
  return key.endsWith('.weight') ? `${key.slice(0, -'.weight'.length)}.${perExpert}` : `${key}_${fused}`;
}

const keep = (spec: TensorSpec, key: string, op: Op): TensorSpec => ({ key, op, ...(spec.when ? { when: spec.when } : {}) });

/**
 * A scale grid laid out like its weight: the weight's own tree evaluated on the grid of
 * `block`-sized scale blocks (gate/up `[ceil(I/rows), ceil(H/cols)]`, down `[ceil(H/rows),
 * ceil(I/cols)]`, last blocks partial), with each projection renamed to its `_scale` part, so
 * fused scales are stacked and concatenated like the weights.
 */
export function gridOp(spec: TensorSpec, block: { rows: number; cols: number }, suffix: 'scale' | 'zero' | 'scale_2' | 'input_scale' | 'g_idx' | 'shape' = 'scale'): Op {
  return (s) => {
    const down = spec.op({ ...s, quant: undefined }).placements.some((p) => p.part === 'down' || p.part === 'shared_down_proj');
    // I and Is alike (a tensor holds routed or shared projections, never both).
    const grid = down
      ? { ...s, hidden: Math.ceil(s.hidden / block.rows), intermediate: Math.ceil(s.intermediate / block.cols), sharedIntermediate: Math.ceil(s.sharedIntermediate / block.cols), quant: undefined }
      : { ...s, intermediate: Math.ceil(s.intermediate / block.rows), sharedIntermediate: Math.ceil(s.sharedIntermediate / block.rows), hidden: Math.ceil(s.hidden / block.cols), quant: undefined };
    const c = spec.op(grid);
    return { shape: c.shape, placements: c.placements.map((p) => ({ ...p, part: `${p.part}_${suffix}` as PartName })) };
  };
}

/**
 * The tree of a transposed, interleaved or flattened weight (spec/layouts.md §4, "other layout
 * families") evaluated with each projection's `[out, in]` shrunk to `[1, 1]` (`cols: 'whole'`:
 * one value per projection) or `[1, in]` (`'each'`: one per input column, g_idx), the axes
 * that only the shrunk indices span dropped: llama4's `gate_up_proj` gives `[E, 2]` (gate,
 * up), its `down_proj` `[E]`, dbrx's `w1` `[E]`; `'each'` gives `[E, H, 2]` / `[E, I]`. With
 * `trailing`, an axis of that many values per projection follows (compressed-tensors'
 * `weight_shape`: `[..., 2]`).
 */
function collapsedOp(spec: TensorSpec, cols: 'whole' | 'each', suffix: 'scale' | 'scale_2' | 'input_scale' | 'g_idx' | 'shape', trailing?: number): Op {
  const tree = gridOp(spec, { rows: WHOLE_AXIS, cols: cols === 'whole' ? WHOLE_AXIS : 1 }, suffix);
  return (s) => {
    const c = tree(s);
    const idle = (d: number) => c.shape[d] === 1 && c.placements.every((p) => p.coords[d]!.constant === 0 && p.coords[d]!.perExpert === 0);
    const kept = c.shape.map((_, d) => d).filter((d) => !idle(d));
    // The part's own index: none left for a single value ([1]), the input column for g_idx ([in]), the trailing axis for a record.
    const own = (perIndex: number[]) => [cols === 'each' ? perIndex[1]! : 0];
    const placements = c.placements.map((p) => ({
      part: p.part,
      coords: [
        ...kept.map((d) => ({ ...p.coords[d]!, perIndex: trailing ? [0] : own(p.coords[d]!.perIndex) })),
        ...(trailing ? [{ constant: 0, perIndex: [1], perExpert: 0 }] : []),
      ],
    }));
    return { shape: [...kept.map((d) => c.shape[d]!), ...(trailing ? [trailing] : [])], placements };
  };
}

/**
 * One value per projection (`weight_scale_2`, `input_scale`, a per-tensor `weight_scale`):
 * stored `perExpertShape` (`[]` or `[1]`) beside a projection, `[E, 2]` (gate, up) beside a
 * fused gate/up tensor, `[E]` beside a fused down tensor, the tree's collapsed form beside a
 * transposed, interleaved or flattened one. `share` stores fewer values beside a tensor that
 * holds several projections: `'expert'` one per expert (gate and up share it: `[E]`),
 * `'tensor'` one for the whole tensor (`[]`); the writer refuses canonical values that differ
 * where one stored value serves them.
 */
export function perProjectionOp(t: ExpertTensor, suffix: 'scale' | 'scale_2' | 'input_scale', perExpertShape: number[], share?: 'expert' | 'tensor'): Op {
  const p = (proj: Projection) => part(`${proj}_${suffix}` as PartName);
  if (share !== undefined && t.kind !== 'projection') {
    const tree = collapsedOp(t.spec, 'whole', suffix);
    return (s) => ({
      shape: share === 'expert' ? [s.experts] : [],
      placements: tree(s).placements.map((x) => ({ part: x.part, coords: share === 'expert' ? [{ constant: 0, perIndex: [0], perExpert: 1 }] : [] })),
    });
  }
  switch (t.kind) {
    case 'projection':
      return single(p(t.part), perExpertShape);
    case 'fused-gate-up':
      return stackExperts(concat(0, single(p('gate'), [1]), single(p('up'), [1])));
    case 'fused-down':
      return stackExperts(single(p('down'), []));
    case 'other':
      return collapsedOp(t.spec, 'whole', suffix);
  }
}

/**
 * Each projection's recorded `[out, in]` (compressed-tensors' `weight_shape`): `[2]` beside a
 * projection, `[E, 2, 2]` (gate's, up's) beside a fused gate/up tensor, `[E, 2]` beside fused down.
 */
export function shapeOp(t: ExpertTensor): Op {
  const p = (proj: Projection) => part(`${proj}_shape` as PartName);
  switch (t.kind) {
    case 'projection':
      return p(t.part);
    case 'fused-gate-up':
      return stackExperts(concat(0, unsqueezeLeading(p('gate')), unsqueezeLeading(p('up'))));
    case 'fused-down':
      return stackExperts(p('down'));
    case 'other':
      return collapsedOp(t.spec, 'whole', 'shape', 2);
  }
}

/** The group of each input column (GPTQ's `g_idx`): `[in]` beside a projection, `[E, 2, H]` beside fused gate/up, `[E, I]` beside fused down. */
export function gIdxOp(t: ExpertTensor): Op {
  const p = (proj: Projection) => part(`${proj}_g_idx` as PartName);
  switch (t.kind) {
    case 'projection':
      return p(t.part);
    case 'fused-gate-up':
      return stackExperts(concat(0, unsqueezeLeading(p('gate')), unsqueezeLeading(p('up'))));
    case 'fused-down':
      return stackExperts(p('down'));
    case 'other':
      return collapsedOp(t.spec, 'each', 'g_idx');
  }
}

/** A companion tensor spec beside an expert tensor. */
export function companion(t: ExpertTensor, key: string, op: Op): TensorSpec {
  return keep(t.spec, key, op);
}

/**
 * The expert tensor, where its format can pack it: packing puts `packing` consecutive elements
 * of the projection's `in` axis (NVFP4, compressed-tensors, GPTQ) or `out` axis (AWQ) into one
 * stored element, so that axis must run with stride 1 through the stored tensor. Every family
 * keeps `in` so; gpt_oss interleaves gate and up along `out` (stride 2), where a stored AWQ
 * word would hold four gate and four up rows: refused (spec/layouts.md §4, other families).
 */
export function packable(t: ExpertTensor, format: string, axis: 'in' | 'out'): ExpertTensor {
  const k = axis === 'out' ? 0 : 1;
  const c = t.spec.op(PROBE);
  const bad = c.placements.find((p) => (PROJECTIONS as readonly string[]).includes(p.part) && !p.coords.some((x) => x.perIndex[k] === 1));
  if (bad === undefined) return t;
  throw new QuantConfigError(`${format} packs along each projection's ${axis} axis, which ${t.spec.key} interleaves (gate and up would share a stored element)`, {
    tensor: t.spec.key,
    expected: `a layout keeping the ${axis} axis contiguous`,
    found: 'interleaved gate/up rows',
  });
}
