// The protocol's canonical tensors (spec §1), in one place: their names, shapes, and which
// rectangles of which logical parts (ops.ts) they concatenate, for one TP/EP rank. The
// loader fills these rectangles from the checkpoint; the writer reads them back out of a
// whole (TP 1, EP 1) canonical set. Gate always precedes up, and each is cut on its own.
import type { PartName } from '../layouts/ops.js';
import type { MoeDims } from '../layouts/registry.js';
import type { ParallelRequest } from '../tensor.js';
import { expertsOf, tpSlice } from './cut.js';

/** A rectangle of one part (rows × cols of a 2-D part; a 1-D part is one row). */
export interface PartSlice {
  part: PartName;
  /** Global expert id for per-expert parts, null for layer-wide parts. */
  expert: number | null;
  rows: [number, number];
  cols: [number, number];
}

/** One canonical tensor: its bytes are its slices, each row-major, one after another. */
export interface CanonicalSpec {
  name: string;
  shape: number[];
  slices: PartSlice[];
}

export const canonicalName = (layer: number, what: string) => `layers.${layer}.${what}`;

/** The `layers.L.experts.ids` tensor: the global ids this EP rank holds, in slot order (I32). */
export function expertIds(d: MoeDims, req: ParallelRequest): number[] {
  return expertsOf(d.experts, req.epSize, req.epRank, req.epPlacement);
}

/** The float canonical tensors of layer `layer` for this rank (harness/quant's canonicalSpecs adds scales), except `experts.ids`. */
export function floatSpecs(layer: number, d: MoeDims, req: ParallelRequest): CanonicalSpec[] {
  const { experts: E, hidden: H, intermediate: I, sharedIntermediate: Is, features: f } = d;
  const ids = expertIds(d, req);
  const ir = tpSlice(I, req.tpSize, req.tpRank);
  const isr = tpSlice(Is, req.tpSize, req.tpRank);
  const Ir = ir[1] - ir[0];
  const Isr = isr[1] - isr[0];
  const whole = (n: number): [number, number] => [0, n];
  const row: [number, number] = [0, 1];
  const perExpert = (slice: (e: number) => PartSlice[]) => ids.flatMap(slice);
  // Non-gated experts (up and down only) have no gate half: w13 holds the up rows alone (spec §1).
  const halves = f.nonGated ? 1 : 2;
  const specs: CanonicalSpec[] = [
    {
      name: canonicalName(layer, 'experts.w13'),
      shape: [ids.length, halves * Ir, H],
      slices: perExpert((e) => [
        ...(f.nonGated ? [] : [{ part: 'gate' as const, expert: e, rows: ir, cols: whole(H) }]),
        { part: 'up', expert: e, rows: ir, cols: whole(H) },
      ]),
    },
    {
      name: canonicalName(layer, 'experts.w2'),
      shape: [ids.length, H, Ir],
      slices: perExpert((e) => [{ part: 'down', expert: e, rows: whole(H), cols: ir }]),
    },
  ];
  if (f.expertBias) {
    specs.push(
      {
        name: canonicalName(layer, 'experts.w13_bias'),
        shape: [ids.length, 2 * Ir],
        slices: perExpert((e) => [
          { part: 'gate_bias', expert: e, rows: row, cols: ir },
          { part: 'up_bias', expert: e, rows: row, cols: ir },
        ]),
      },
      {
        // Whole on every TP rank: the consumer adds it once, not once per rank.
        name: canonicalName(layer, 'experts.w2_bias'),
        shape: [ids.length, H],
        slices: perExpert((e) => [{ part: 'down_bias', expert: e, rows: row, cols: whole(H) }]),
      },
    );
  }
  // The router scores the zero-compute experts too (longcat_flash): Er = E + Z rows.
  const Er = E + (d.zeroExperts ?? 0);
  // ... and the shared experts it weights (inkling): S more rows, scored after those.
  const Rr = Er + (d.sharedRouted ?? 0);
  specs.push({ name: canonicalName(layer, 'router.weight'), shape: [Rr, H], slices: [{ part: 'router', expert: null, rows: whole(Rr), cols: whole(H) }] });
  if (f.routerGlobalScale) {
    specs.push({ name: canonicalName(layer, 'router.global_scale'), shape: [1], slices: [{ part: 'router_global_scale', expert: null, rows: row, cols: whole(1) }] });
  }
  if (f.routerBias) {
    specs.push({ name: canonicalName(layer, 'router.bias'), shape: [Er], slices: [{ part: 'router_bias', expert: null, rows: row, cols: whole(Er) }] });
  }
  if (f.correctionBias) {
    specs.push({
      name: canonicalName(layer, 'router.correction_bias'),
      shape: [Er],
      slices: [{ part: 'correction_bias', expert: null, rows: row, cols: whole(Er) }],
    });
  }
  if (f.sharedExpert) {
    specs.push(
      {
        name: canonicalName(layer, 'shared.w13'),
        shape: [halves * Isr, H],
        slices: [
          ...(f.nonGated ? [] : [{ part: 'shared_gate_proj' as const, expert: null, rows: isr, cols: whole(H) }]),
          { part: 'shared_up_proj', expert: null, rows: isr, cols: whole(H) },
        ],
      },
      {
        name: canonicalName(layer, 'shared.w2'),
        shape: [H, Isr],
        slices: [{ part: 'shared_down_proj', expert: null, rows: whole(H), cols: isr }],
      },
    );
  }
  if (f.outputBias) {
    // Whole on every rank, like the router: the consumer adds it once per token.
    specs.push({ name: canonicalName(layer, 'output_bias'), shape: [H], slices: [{ part: 'output_bias', expert: null, rows: row, cols: whole(H) }] });
  }
  if (f.gemmaRouter) {
    // Whole on every rank, like the router.
    const vector = (what: string, part: PartName, n: number): CanonicalSpec => ({ name: canonicalName(layer, what), shape: [n], slices: [{ part, expert: null, rows: row, cols: whole(n) }] });
    specs.push(vector('router.input_scale', 'router_input_scale', H), vector('router.expert_scale', 'expert_scale', E), vector('expert_input_norm', 'expert_input_norm', H));
  }
  if (f.outputNorm) {
    // Whole on every rank: it normalises the sum of all ranks' outputs, once.
    specs.push({ name: canonicalName(layer, 'output_norm'), shape: [H], slices: [{ part: 'output_norm', expert: null, rows: row, cols: whole(H) }] });
  }
  if (f.sharedGate) {
    specs.push({ name: canonicalName(layer, 'shared.gate'), shape: [1, H], slices: [{ part: 'shared_gate', expert: null, rows: row, cols: whole(H) }] });
  }
  return specs;
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
