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
import { expertIds, floatSpecs, type CanonicalSpec, type PartSlice } from '../canonical/canonical.js';
import type { MoeDims } from '../layouts/registry.js';
import type { PartName } from '../layouts/ops.js';
import { tpSlice } from '../canonical/cut.js';
import type { ParallelRequest } from '../tensor.js';
import { blockSpan } from './fp8-block.js';
import { formatOf } from './formats/index.js';
import { schemeOf } from './scheme.js';

type Range = [number, number];

/** `specs` (the float canonical specs of one layer) adapted to `d.quant`; unchanged for float checkpoints. */
function quantizedSpecs(specs: CanonicalSpec[], layer: number, d: MoeDims, req: ParallelRequest, ids: number[]): CanonicalSpec[] {
  const q = schemeOf(d.quant);
  if (q === undefined) return specs;
  const format = formatOf(q);
  const name = (what: string) => `layers.${layer}.experts.${what}`;
  const [lo, hi] = tpSlice(d.intermediate, req.tpSize, req.tpRank);
  const Ir = hi - lo;
  const H = d.hidden;
  const n = ids.length;
  const perExpert = (slice: (e: number) => PartSlice[]) => ids.flatMap(slice);
  const whole = (k: number): Range => [0, k];
  const gateUp = (part: (p: 'gate' | 'up') => PartName, rows: Range, cols: Range) => perExpert((e) => [
    { part: part('gate'), expert: e, rows, cols },
    { part: part('up'), expert: e, rows, cols },
  ]);
  const out: CanonicalSpec[] = [];

  // The weights: packed columns, and MXFP4's [..., blocks, 16] view of them.
  const p = q.packing;
  const wCols: Range = [lo / p, hi / p];
  const split = (cols: number) => (format.blockBytes ? [(cols * p) / (2 * format.blockBytes), format.blockBytes] : [cols]);
  const weights: Record<string, CanonicalSpec> = q.packRows
    ? {
        // Packed along the output rows (AWQ): w13's rows cut in whole words, w2's columns freely.
        [name('w13')]: { name: name('w13'), shape: [n, (2 * Ir) / p, H], slices: gateUp((x) => x, [lo / p, hi / p], whole(H)) },
        [name('w2')]: { name: name('w2'), shape: [n, H / p, Ir], slices: perExpert((e) => [{ part: 'down', expert: e, rows: whole(H / p), cols: [lo, hi] }]) },
      }
    : {
        [name('w13')]: { name: name('w13'), shape: [n, 2 * Ir, ...split(H / p)], slices: gateUp((x) => x, [lo, hi], whole(H / p)) },
        [name('w2')]: { name: name('w2'), shape: [n, H, ...split(Ir / p)], slices: perExpert((e) => [{ part: 'down', expert: e, rows: whole(H), cols: wCols }]) },
      };
  out.push(...specs.map((s) => weights[s.name] ?? s));

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
      const k2: Range = q.kScalesWhole ? whole(Math.ceil(d.intermediate / b.cols)) : k;
      out.push(
        { name: name('w13_scale'), shape: [n, 2 * rows.count, hn], slices: gateUp((x) => `${x}_scale`, r, whole(hn)) },
        { name: name('w2_scale'), shape: [n, hm, k2[1] - k2[0]], slices: perExpert((e) => [{ part: 'down_scale', expert: e, rows: whole(hm), cols: k2 }]) },
      );
    } else if (c === 'zero') {
      // Zero points: the scale grid's whole groups, `zeroRows` rows packed into one element (w13's rows cut in whole elements: Ir % zeroRows == 0).
      const zr = q.zeroRows ?? 1;
      const g = q.scaleBlock.cols;
      const hn = Math.ceil(H / g);
      const hz = Math.ceil(H / zr);
      out.push(
        { name: name('w13_zero'), shape: [n, (2 * Ir) / zr, hn], slices: gateUp((x) => `${x}_zero`, [lo / zr, hi / zr], whole(hn)) },
        {
          name: name('w2_zero'),
          shape: [n, hz, q.kScalesWhole ? Math.ceil(d.intermediate / g) : Ir / g],
          slices: perExpert((e) => [{ part: 'down_zero', expert: e, rows: whole(hz), cols: q.kScalesWhole ? whole(Math.ceil(d.intermediate / g)) : [lo / g, hi / g] }]),
        },
      );
    } else if (c === 'g_idx') {
      // The group of each input column: gate's and up's whole (their input is H), w2's for the rank's columns (global group ids).
      out.push(
        { name: name('w13_g_idx'), shape: [n, 2, H], slices: gateUp((x) => `${x}_g_idx`, [0, 1], whole(H)) },
        { name: name('w2_g_idx'), shape: [n, Ir], slices: perExpert((e) => [{ part: 'down_g_idx', expert: e, rows: [0, 1], cols: [lo, hi] }]) },
      );
    } else if (c === 'shape') {
      // The recorded [out, in] of each whole projection, the same on every rank.
      out.push(
        { name: name('w13_shape'), shape: [n, 2, 2], slices: gateUp((x) => `${x}_shape`, [0, 1], [0, 2]) },
        { name: name('w2_shape'), shape: [n, 2], slices: perExpert((e) => [{ part: 'down_shape', expert: e, rows: [0, 1], cols: [0, 2] }]) },
      );
    } else {
      out.push(
        { name: name(`w13_${c}`), shape: [n, 2], slices: gateUp((x) => `${x}_${c}`, [0, 1], [0, 1]) },
        { name: name(`w2_${c}`), shape: [n], slices: perExpert((e) => [{ part: `down_${c}`, expert: e, rows: [0, 1], cols: [0, 1] }]) },
      );
    }
  }
  return out;
}

/** Every canonical tensor of layer `layer` for this rank (float weights, and companions where quantized), except `experts.ids`. */
export function canonicalSpecs(layer: number, d: MoeDims, req: ParallelRequest): CanonicalSpec[] {
  return quantizedSpecs(floatSpecs(layer, d, req), layer, d, req, expertIds(d, req));
}
