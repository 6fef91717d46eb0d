// The canonical tensors of a quantized checkpoint for one rank (spec §4), as rectangles of
// the logical parts like ../canonical/canonical.ts, for every format alike (./formats/ say
// which companions they have):
// - `w13`/`w2` keep the quantized elements, `cols / packing` of them per row (MXFP4 keeps its
//   bytes as `[..., blocks, 16]`);
// - `W_scale` holds the scale grid rows (w13) or columns (w2) the rank's slice touches: where
//   TP may split a block (FP8), every block it touches, so a block straddling two ranks is
//   on both; otherwise (MXFP4, NVFP4) its own whole blocks;
// - `W_scale_2` / `W_input_scale` hold one value per projection: `[E_local, 2]` (gate, up)
//   and `[E_local]`, the same on every TP rank.
import { QuantConfigError } from './errors.js';
import { expertIds, floatSpecs, type CanonicalSpec, type PartSlice } from '../canonical/canonical.js';
import type { MoeDims } from '../layouts/registry.js';
import type { PartName } from '../layouts/ops.js';
import { tpSlice } from '../canonical/cut.js';
import type { ParallelRequest } from '../tensor.js';
import { blockSpan } from './fp8-block.js';
import { formatOf } from './formats/index.js';
import { schemeOf, type QuantScheme } from './scheme.js';

type Range = [number, number];

/** `specs` (the float canonical specs of one layer) adapted to `d.quant`; unchanged for float checkpoints. */
function quantizedSpecs(specs: CanonicalSpec[], layer: number, d: MoeDims, req: ParallelRequest, ids: number[]): CanonicalSpec[] {
  const q = schemeOf(d.quant);
  if (q === undefined) return specs;
  const routed: WeightGroup = { prefix: 'experts', ids, I: d.intermediate, gate: 'gate', up: 'up', down: 'down' };
  const shared: WeightGroup = { prefix: 'shared', ids: null, I: d.sharedIntermediate, gate: 'shared_gate_proj', up: 'shared_up_proj', down: 'shared_down_proj' };
  const groups = q.sharedQuantized && d.sharedIntermediate > 0 && d.features.sharedExpert ? [routed, shared] : [routed];
  if (groups.includes(shared) && (d.sharedRouted ?? 1) > 1) {
    // Their canonical rows are cut from S stored tensors (harness/canonical's sharedPieces); quantized, their scale blocks are not yet.
    throw new QuantConfigError('quantized shared experts are supported for one stored shared expert only', { expected: 'n_shared_experts 1', found: d.sharedRouted });
  }
  const replaced = new Map<string, CanonicalSpec>();
  const companions: CanonicalSpec[] = [];
  for (const g of groups) {
    const { weights, extra } = groupSpecs(g, layer, d, req, q);
    for (const w of weights) replaced.set(w.name, w);
    companions.push(...extra);
  }
  return [...specs.map((s) => replaced.get(s.name) ?? s), ...companions];
}

/** Quantized weights of one layer: the routed experts (stacked over the rank's `ids`) or the shared expert (`ids` null: no expert axis). */
interface WeightGroup {
  prefix: 'experts' | 'shared';
  ids: number[] | null;
  I: number;
  gate: PartName;
  up: PartName;
  down: PartName;
}

function groupSpecs(grp: WeightGroup, layer: number, d: MoeDims, req: ParallelRequest, q: QuantScheme): { weights: CanonicalSpec[]; extra: CanonicalSpec[] } {
  const format = formatOf(q);
  const name = (what: string) => `layers.${layer}.${grp.prefix}.${what}`;
  const [lo, hi] = tpSlice(grp.I, req.tpSize, req.tpRank);
  const Ir = hi - lo;
  const H = d.hidden;
  const lead = grp.ids ? [grp.ids.length] : [];
  const each = (slice: (e: number | null) => PartSlice[]) => (grp.ids ? grp.ids.flatMap(slice) : slice(null));
  const whole = (k: number): Range => [0, k];
  const part = (p: PartName, c: string) => `${p}_${c}` as PartName;
  const gateUp = (c: string | null, rows: Range, cols: Range) => each((e) => [
    { part: c ? part(grp.gate, c) : grp.gate, expert: e, rows, cols },
    { part: c ? part(grp.up, c) : grp.up, expert: e, rows, cols },
  ]);
  const down = (c: string | null, rows: Range, cols: Range) => each((e) => [{ part: c ? part(grp.down, c) : grp.down, expert: e, rows, cols }]);

  // The weights: packed columns, and MXFP4's [..., blocks, 16] view of them.
  const p = q.packing;
  const split = (cols: number) => (format.blockBytes ? [(cols * p) / (2 * format.blockBytes), format.blockBytes] : [cols]);
  const weights: CanonicalSpec[] = q.packRows
    ? [
        // Packed along the output rows (AWQ): w13's rows cut in whole words, w2's columns freely.
        { name: name('w13'), shape: [...lead, (2 * Ir) / p, H], slices: gateUp(null, [lo / p, hi / p], whole(H)) },
        { name: name('w2'), shape: [...lead, H / p, Ir], slices: down(null, whole(H / p), [lo, hi]) },
      ]
    : [
        { name: name('w13'), shape: [...lead, 2 * Ir, ...split(H / p)], slices: gateUp(null, [lo, hi], whole(H / p)) },
        { name: name('w2'), shape: [...lead, H, ...split(Ir / p)], slices: down(null, whole(H), [lo / p, hi / p]) },
      ];

  const extra: CanonicalSpec[] = [];
  for (const c of format.companions(q)) {
    if (c === 'scale') {
      const b = q.scaleBlock;
      // Every block the slice touches (a straddled block is whole on both ranks only where the format allows it; checkRequest refuses the rest).
      const rows = blockSpan(lo, Ir, b.rows);
      const cols = blockSpan(lo, Ir, b.cols);
      const r: Range = [rows.first, rows.first + rows.count];
      const k: Range = [cols.first, cols.first + cols.count];
      const hn = Math.ceil(H / b.cols);
      const hm = Math.ceil(H / b.rows);
      // Activation order: every rank holds all of w2's groups (its columns may use any of them).
      const k2: Range = q.kScalesWhole ? whole(Math.ceil(grp.I / b.cols)) : k;
      extra.push(
        { name: name('w13_scale'), shape: [...lead, 2 * rows.count, hn], slices: gateUp('scale', r, whole(hn)) },
        { name: name('w2_scale'), shape: [...lead, hm, k2[1] - k2[0]], slices: down('scale', whole(hm), k2) },
      );
    } else if (c === 'zero') {
      // Zero points: the scale grid's whole groups, `zeroRows` rows packed into one element (w13's rows cut in whole elements: Ir % zeroRows == 0).
      const zr = q.zeroRows ?? 1;
      const g = q.scaleBlock.cols;
      const hn = Math.ceil(H / g);
      const hz = Math.ceil(H / zr);
      const k2: Range = q.kScalesWhole ? whole(Math.ceil(grp.I / g)) : [lo / g, hi / g];
      extra.push(
        { name: name('w13_zero'), shape: [...lead, (2 * Ir) / zr, hn], slices: gateUp('zero', [lo / zr, hi / zr], whole(hn)) },
        { name: name('w2_zero'), shape: [...lead, hz, k2[1] - k2[0]], slices: down('zero', whole(hz), k2) },
      );
    } else if (c === 'g_idx') {
      // The group of each input column: gate's and up's whole (their input is H), w2's for the rank's columns (global group ids).
      extra.push(
        { name: name('w13_g_idx'), shape: [...lead, 2, H], slices: gateUp('g_idx', [0, 1], whole(H)) },
        { name: name('w2_g_idx'), shape: [...lead, Ir], slices: down('g_idx', [0, 1], [lo, hi]) },
      );
    } else if (c === 'shape') {
      // The recorded [out, in] of each whole projection, the same on every rank.
      extra.push(
        { name: name('w13_shape'), shape: [...lead, 2, 2], slices: gateUp('shape', [0, 1], [0, 2]) },
        { name: name('w2_shape'), shape: [...lead, 2], slices: down('shape', [0, 1], [0, 2]) },
      );
    } else {
      extra.push(
        { name: name(`w13_${c}`), shape: [...lead, 2], slices: gateUp(c, [0, 1], [0, 1]) },
        { name: name(`w2_${c}`), shape: lead, slices: down(c, [0, 1], [0, 1]) },
      );
    }
  }
  return { weights, extra };
}

/** Every canonical tensor of layer `layer` for this rank (float weights, and companions where quantized), except `experts.ids`. */
export function canonicalSpecs(layer: number, d: MoeDims, req: ParallelRequest): CanonicalSpec[] {
  return quantizedSpecs(floatSpecs(layer, d, req), layer, d, req, expertIds(d, req));
}
