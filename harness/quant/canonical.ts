// The canonical tensors of a quantized checkpoint for one rank (spec §4), as rectangles of
// the logical parts like ../canonical/canonical.ts: `w13`/`w2` keep the quantized bytes (MXFP4:
// byte columns, two values each, shaped [..., blocks, 16]), and `w13_scale`/`w2_scale` hold
// the scale rows and columns the rank's slice touches (FP8: every block it touches, so a
// block straddling two ranks is on both; MXFP4: its own whole blocks).
import { expertIds, floatSpecs, type CanonicalSpec, type PartSlice } from '../canonical/canonical.js';
import type { MoeDims } from '../layouts/registry.js';
import { tpSlice } from '../canonical/cut.js';
import { schemeOf } from './scheme.js';
import type { ParallelRequest } from '../tensor.js';
import { blockSpan } from './fp8-block.js';
import { MX_BLOCK, MX_BLOCK_BYTES } from './mxfp4.js';

/** `specs` (the float canonical specs of one layer) adapted to `d.quant`; unchanged for float checkpoints. */
function quantizedSpecs(specs: CanonicalSpec[], layer: number, d: MoeDims, req: ParallelRequest, ids: number[]): CanonicalSpec[] {
  const q = schemeOf(d.quant);
  if (q === undefined) return specs;
  const name = (what: string) => `layers.${layer}.experts.${what}`;
  const [lo, hi] = tpSlice(d.intermediate, req.tpSize, req.tpRank);
  const Ir = hi - lo;
  const H = d.hidden;
  const n = ids.length;
  const perExpert = (slice: (e: number) => PartSlice[]) => ids.flatMap(slice);
  const whole = (k: number): [number, number] => [0, k];
  if (q.method === 'fp8') {
    const rows = blockSpan(lo, Ir, q.block.rows);
    const cols = blockSpan(lo, Ir, q.block.cols);
    const r: [number, number] = [rows.first, rows.first + rows.count];
    const c: [number, number] = [cols.first, cols.first + cols.count];
    const hn = Math.ceil(H / q.block.cols);
    const hm = Math.ceil(H / q.block.rows);
    return [
      ...specs,
      {
        name: name('w13_scale'),
        shape: [n, 2 * rows.count, hn],
        slices: perExpert((e) => [
          { part: 'gate_scale', expert: e, rows: r, cols: whole(hn) },
          { part: 'up_scale', expert: e, rows: r, cols: whole(hn) },
        ]),
      },
      { name: name('w2_scale'), shape: [n, hm, cols.count], slices: perExpert((e) => [{ part: 'down_scale', expert: e, rows: whole(hm), cols: c }]) },
    ];
  }
  // MXFP4: rows are cut freely; w2's columns in whole 32-element blocks (checkRequest refuses the rest).
  const ir: [number, number] = [lo, hi];
  const g = H / MX_BLOCK;
  const byteCols: [number, number] = [lo / 2, hi / 2];
  const blockCols: [number, number] = [lo / MX_BLOCK, hi / MX_BLOCK];
  const replaced: Record<string, CanonicalSpec> = {
    [name('w13')]: {
      name: name('w13'),
      shape: [n, 2 * Ir, g, MX_BLOCK_BYTES],
      slices: perExpert((e) => [
        { part: 'gate', expert: e, rows: ir, cols: whole(H / 2) },
        { part: 'up', expert: e, rows: ir, cols: whole(H / 2) },
      ]),
    },
    [name('w2')]: { name: name('w2'), shape: [n, H, Ir / MX_BLOCK, MX_BLOCK_BYTES], slices: perExpert((e) => [{ part: 'down', expert: e, rows: whole(H), cols: byteCols }]) },
  };
  return [
    ...specs.map((s) => replaced[s.name] ?? s),
    {
      name: name('w13_scale'),
      shape: [n, 2 * Ir, g],
      slices: perExpert((e) => [
        { part: 'gate_scale', expert: e, rows: ir, cols: whole(g) },
        { part: 'up_scale', expert: e, rows: ir, cols: whole(g) },
      ]),
    },
    { name: name('w2_scale'), shape: [n, H, Ir / MX_BLOCK], slices: perExpert((e) => [{ part: 'down_scale', expert: e, rows: whole(H), cols: blockCols }]) },
  ];
}

/** Every canonical tensor of layer `layer` for this rank (float weights, and scales where quantized), except `experts.ids`. */
export function canonicalSpecs(layer: number, d: MoeDims, req: ParallelRequest): CanonicalSpec[] {
  return quantizedSpecs(floatSpecs(layer, d, req), layer, d, req, expertIds(d, req));
}
