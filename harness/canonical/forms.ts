// Engine forms (spec/loader-protocol.md §8): what real engines legitimately keep in memory
// instead of the canonical form of §1. A loader declares the forms it emits; the harness
// maps its ranks back to the canonical form, checking on the way everything the form
// promises (zero padding, identical replicas, every physical slot equal to its logical
// expert), then compares bit for bit and sums the forward as for any loader. The forms are
// data: one entry each, with the step that undoes it, applied in the table's order.
import { MoeConformanceError } from '../errors.js';
import { decodeFloats64 } from '../safetensors/codecs.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import { rankName, type Canonical, type ParallelRequest, type Tensor } from '../tensor.js';
import { concatAxis, int32s, int32Tensor, pickSlots, selectAxis, transposeLast2 } from '../tensor-ops.js';
import { expertsOf } from './cut.js';
import type { QuantGeometry } from '../layouts/ops.js';
import { marlinScaleBytes, marlinTiles, marlinWeightBytes, marlinZeroBytes, MARLIN_TILE_K } from './marlin.js';

/** A form list that cannot be honoured: an unknown name, a bad pad, two forms that exclude each other. */
export class FormDeclarationError extends MoeConformanceError {}

/** A loader's output does not hold what its declared form promises. */
export class FormMismatch extends MoeConformanceError {
  constructor(
    readonly form: string,
    readonly rank: ParallelRequest | undefined,
    message: string,
    context: { tensor: string; expected: unknown; found: unknown; layer?: number },
  ) {
    super(`${rank ? `${rankName(rank)}: ` : ''}declared form ${form}: ${message}`, context);
  }
}

/** One rank's tensors as the loader wrote them (the same shape as kernels' RankTensors). */
export interface RankOutput {
  req: ParallelRequest;
  tensors: Canonical;
  /**
   * After `eplb`: for each layer, where each canonical expert slot was taken from (the loader's
   * EP rank and physical slot), so a difference found later names the slot the loader wrote.
   */
  origins?: Map<number, Array<{ epRank: number; slot: number }>>;
}

/** `expert 3, from EP rank 1 physical slot 4`: the loader's slot behind canonical slot `slot` of a mapped rank, when eplb moved it. */
export function slotOrigin(r: RankOutput, tensor: string, slot: number): string | undefined {
  const L = /^layers\.(\d+)\.experts\./.exec(tensor)?.[1];
  const o = L === undefined ? undefined : r.origins?.get(Number(L))?.[slot];
  return o && `expert slot ${slot} was taken from EP rank ${o.epRank} physical slot ${o.slot}`;
}

/** The model sizes the mapping needs (from config.json). */
export interface FormDims {
  experts: number;
  intermediate: number;
  sharedIntermediate: number;
  /** The hidden size (`marlin`; `transposed` checks it where given), the quantization and whether the experts are non-gated. */
  hidden?: number;
  /** The experts' input/output size where it is not `hidden` (nemotron_h's latent size). */
  expertHidden?: number;
  quant?: QuantGeometry;
  features?: { nonGated?: boolean };
}

/** A parsed, valid form list. */
export interface FormSet {
  /** The declared names, in the order of ENGINE_FORMS. */
  readonly names: readonly string[];
  /** `pad-ir-N`: the multiple `Ir` is padded to. */
  readonly padIr?: number;
}

export const NO_FORMS: FormSet = { names: [] };

interface Step {
  set: FormSet;
  dims: FormDims;
}

export interface EngineForm {
  /** The name a loader declares; `pad-ir-N` carries its multiple (`pad-ir-64`). */
  name: string;
  /** What the loader's tensors hold instead of §1's. */
  holds: string;
  /** Engines that keep their weights this way. */
  seenIn: string;
  /** Undoes the form on every rank of one split (the ranks of the other forms already undone). */
  toCanonical(ranks: RankOutput[], s: Step): RankOutput[];
}

const layersOf = (c: Canonical) => [...new Set([...c.keys()].map((k) => /^layers\.(\d+)\.experts\.ids$/.exec(k)?.[1]).filter((x): x is string => x !== undefined).map(Number))].sort((a, b) => a - b);
/**
 * The names of each layer's `layers.L.experts.*` tensors (by L as written), in the rank's
 * order: one pass over a loader's names, so that a step per layer costs that layer's tensors,
 * not the whole rank's. Scanning the rank for each layer was quadratic in the loader's
 * output: 20,000 layers of `experts.ids` alone took 32 s in `w31`.
 */
function expertNamesByLayer(c: Canonical): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const k of c.keys()) {
    const L = /^layers\.(\d+)\.experts\./.exec(k)?.[1];
    if (L === undefined) continue;
    const names = out.get(L);
    if (names) names.push(k);
    else out.set(L, [k]);
  }
  return out;
}
const quantized = (c: Canonical, L: number) => c.has(`layers.${L}.experts.w13_scale`);
const elemBytes = (t: Tensor) => dtypeBits(t.dtype) / 8;
const hex = (b: Uint8Array) => `0x${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;

/** Element `k` of `t` as its bytes in file order and, for a float dtype, its value: `0x0000803f (1)`. */
function element(t: Tensor, k: number): string {
  const e = elemBytes(t);
  const b = t.bytes.subarray(k * e, (k + 1) * e);
  let value = '';
  try {
    value = ` (${decodeFloats64(t.dtype, b)[0]})`;
  } catch {
    // not a float dtype: the bytes say it all
  }
  return `${hex(b)}${value}`;
}

/** The rank with the given TP and EP ranks, or a mismatch naming the form that needs it. */
function rankAt(ranks: readonly RankOutput[], tp: number, ep: number, form: string): RankOutput {
  const r = ranks.find((x) => x.req.tpRank === tp && x.req.epRank === ep);
  if (!r) throw new FormMismatch(form, undefined, 'undoing the form needs every rank of the split', { tensor: '(all)', expected: `TP rank ${tp}, EP rank ${ep}`, found: 'none' });
  return r;
}

function withTensors(r: RankOutput, edit: (out: Canonical) => void): RankOutput {
  const out: Canonical = new Map(r.tensors);
  edit(out);
  return { req: r.req, tensors: out };
}

/** `[i, j, k]` of the element at flat index `i` of a tensor of `shape`. */
function coordinates(shape: readonly number[], i: number): number[] {
  const c: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    c.unshift(i % shape[d]!);
    i = Math.floor(i / shape[d]!);
  }
  return c;
}

/** The first element (as coordinates and bytes) where `a` and `b` differ, or undefined. */
function firstDiffering(a: Tensor, b: Tensor): { at: number[]; a: string; b: string } | undefined {
  const e = elemBytes(a);
  for (let i = 0; i < a.bytes.length; i++) {
    if (a.bytes[i] !== b.bytes[i]) {
      const k = Math.floor(i / e);
      return { at: coordinates(a.shape, k), a: element(a, k), b: element(b, k) };
    }
  }
  return undefined;
}

function checkShape(t: Tensor | undefined, want: number[], form: string, rank: ParallelRequest, name: string, what: string): Tensor {
  if (!t) throw new FormMismatch(form, rank, `${what} is missing`, { tensor: name, expected: `[${want}]`, found: 'absent' });
  if (t.shape.join() !== want.join()) throw new FormMismatch(form, rank, `${what} has the wrong shape`, { tensor: name, expected: `[${want}]`, found: `[${t.shape}]` });
  return t;
}

/** The index range `[a, b)` of `axis` must be all zero bytes (+0.0). */
function checkZero(t: Tensor, axis: number, a: number, b: number, form: string, rank: ParallelRequest, name: string, what: string): void {
  if (b <= a) return;
  const pad = selectAxis(t, axis, [[a, b]]);
  const i = pad.bytes.findIndex((x) => x !== 0);
  if (i < 0) return;
  const e = elemBytes(t);
  const k = Math.floor(i / e);
  const at = coordinates(pad.shape, k);
  at[axis] = at[axis]! + a;
  throw new FormMismatch(form, rank, `${what} must be zeros`, { tensor: name, expected: `${hex(new Uint8Array(e))} (zero) at [${at}]`, found: element(pad, k) });
}

/**
 * A per-rank step: `fix` applied to every `layers.L.experts.<w>` a rank holds, `w` in `which`
 * or matching it (quantized layers left as they are where `floatOnly`).
 */
function eachExpertTensor(ranks: RankOutput[], which: readonly string[] | RegExp, floatOnly: boolean, fix: (t: Tensor, name: string, req: ParallelRequest, w: string) => Tensor): RankOutput[] {
  return ranks.map((r) =>
    withTensors(r, (out) => {
      const names = which instanceof RegExp ? expertNamesByLayer(r.tensors) : undefined;
      for (const L of layersOf(r.tensors)) {
        if (floatOnly && quantized(r.tensors, L)) continue;
        const p = `layers.${L}.experts.`;
        const ws = which instanceof RegExp ? (names!.get(String(L)) ?? []).map((k) => k.slice(p.length)).filter((w) => which.test(w)) : which;
        for (const w of ws) {
          const t = out.get(p + w);
          if (t) out.set(p + w, fix(t, p + w, r.req, w));
        }
      }
    }),
  );
}

const transposed: EngineForm = {
  name: 'transposed',
  holds: '`experts.w13` as `[E_local, H, 2*Ir]` and `experts.w2` as `[E_local, Ir, H]`: each expert\'s matrices transposed (input dimension first)',
  seenIn: 'engines whose grouped GEMM takes `[K, N]` operands (llama4\'s and gpt-oss\'s own `[E, H, 2I]` checkpoint layout kept as is)',
  toCanonical: (ranks, { set, dims }) =>
    eachExpertTensor(ranks, ['w13', 'w2'], true, (t, name, req, w) => {
      if (t.shape.length !== 3) throw new FormMismatch('transposed', req, 'a transposed expert tensor is stacked 3-D', { tensor: name, expected: '[E_local, a, b]', found: `[${t.shape}]` });
      // The shape the form declares, checked before transposing: a tensor left untransposed is named as the loader wrote it.
      // Ir is padded where pad-ir-N is declared too (undone after this form); H where the sizes give it.
      const Ir = dims.intermediate / req.tpSize;
      const Irf = set.padIr !== undefined ? Math.ceil(Ir / set.padIr) * set.padIr : Ir;
      const H = dims.expertHidden ?? dims.hidden;
      const n13 = (dims.features?.nonGated ? 1 : 2) * Irf;
      const [a, b] = w === 'w13' ? [H, n13] : [Irf, H];
      const fits = (want: number | undefined, got: number | undefined) => want === undefined || want === got;
      if (!fits(a, t.shape[1]) || !fits(b, t.shape[2])) {
        const expected = `[${[t.shape[0], a ?? 'H', b ?? 'H']}]`;
        const declared = w === 'w13' ? `[E_local, H, ${n13 === Irf ? '' : '2*'}${Irf === Ir ? 'Ir' : 'Irp'}]` : `[E_local, ${Irf === Ir ? 'Ir' : 'Irp'}, H]`;
        throw new FormMismatch('transposed', req, `a transposed ${w} is ${declared}`, { tensor: name, expected, found: `[${t.shape}]` });
      }
      return transposeLast2(t);
    }),
};

const padIr: EngineForm = {
  name: 'pad-ir-N',
  holds: '`Ir` padded with zero rows (columns) to `Irp = ceil(Ir / N) * N`: `experts.w13` `[E_local, 2*Irp, H]` (gate rows `0..Ir`, zeros to `Irp`, up rows `Irp..Irp+Ir`, zeros to `2*Irp`), `experts.w13_bias` `[E_local, 2*Irp]` the same, `experts.w2` `[E_local, H, Irp]` (zero columns from `Ir`); the padding is all-zero bytes',
  seenIn: 'vLLM and SGLang pad the intermediate size for their MoE kernels (e.g. to 128 or 256 for MXFP4 and Marlin, to a multiple of 64 for the FlashInfer/TRT-LLM paths)',
  toCanonical: (ranks, { set, dims }) => {
    const N = set.padIr!;
    const form = `pad-ir-${N}`;
    return eachExpertTensor(ranks, ['w13', 'w13_bias', 'w2'], true, (t, name, req, w) => {
      const Ir = dims.intermediate / req.tpSize;
      const Irp = Math.ceil(Ir / N) * N;
      if (w === 'w2') {
        checkShape(t, [t.shape[0]!, t.shape[1]!, Irp], form, req, name, `w2 padded to Irp = ${Irp} columns`);
        checkZero(t, 2, Ir, Irp, form, req, name, 'the padding columns');
        return selectAxis(t, 2, [[0, Ir]]);
      }
      // Gate rows then zeros, up rows then zeros, on axis 1 of w13 [S, 2*Irp, H] and w13_bias [S, 2*Irp].
      checkShape(t, [t.shape[0]!, 2 * Irp, ...t.shape.slice(2)], form, req, name, `${w} padded to 2*Irp = 2*${Irp}`);
      checkZero(t, 1, Ir, Irp, form, req, name, 'the gate half\'s padding rows');
      checkZero(t, 1, Irp + Ir, 2 * Irp, form, req, name, 'the up half\'s padding rows');
      return selectAxis(t, 1, [[0, Ir], [Irp, Irp + Ir]]);
    });
  },
};

const w31: EngineForm = {
  name: 'w31',
  holds: '`experts.w13` and every `experts.w13_*` beside it (bias, and a quantized format\'s companions: scales, zero points, shapes, group indices, all gate-then-up on their second axis) with the up (w3) half first and the gate (w1) half second: `[up; gate]`',
  seenIn: 'TensorRT-LLM (`w3_w1` in its fused MoE) and FlashInfer\'s CUTLASS/TRT-LLM MoE kernels ("w31")',
  toCanonical: (ranks) =>
    eachExpertTensor(ranks, /^w13(_\w+)?$/, false, (t, name, req) => {
      const n = t.shape[1] ?? 0;
      if (t.shape.length < 2 || n % 2 !== 0) throw new FormMismatch('w31', req, 'an [up; gate] tensor has two equal halves', { tensor: name, expected: '[E_local, 2*Ir, ...]', found: `[${t.shape}]` });
      return selectAxis(t, 1, [[n / 2, n], [0, n / 2]]);
    }),
};

/**
 * The Marlin geometry of one INT4 expert weight of a rank (`w13`: N = 2*Ir output rows, K = H;
 * `w2`: N = H, K = Ir), or undefined where the form leaves it as §4 has it: not INT4 groups,
 * activation order, or sizes Marlin cannot tile.
 */
function marlinGeometry(dims: FormDims, w: 'w13' | 'w2', tpSize: number): { K: number; N: number; G: number; q: QuantGeometry } | undefined {
  const q = dims.quant;
  if (!q || q.packing !== 8 || q.scaleBlock.rows !== 1 || q.kScalesWhole || dims.hidden === undefined) return undefined;
  const Ir = dims.intermediate / tpSize;
  const [K, N] = w === 'w13' ? [dims.hidden, (dims.features?.nonGated ? 1 : 2) * Ir] : [Ir, dims.hidden];
  return marlinTiles(K, N) && K % q.scaleBlock.cols === 0 ? { K, N, G: K / q.scaleBlock.cols, q } : undefined;
}

const marlin: EngineForm = {
  name: 'marlin',
  holds: 'INT4 group-quantized experts (compressed-tensors pack-quantized, GPTQ, AWQ; no activation order) in Marlin\'s tile order, wherever a weight\'s K is a multiple of 16 and its N of 64 (`w13`: K = H, N = 2*Ir; `w2`: K = Ir, N = H): `W` I32 `[E_local, K/16, 2N]` as gptq_marlin_repack writes it, `W_scale` `[E_local, G, N]` permuted by marlin_permute_scales (64-blocks where G = K/group > 1, 32-blocks where G = 1), `W_zero` I32 `[E_local, G, N/8]` as marlin_zero_points packs it; codes and zeros keep their stored values, other companions stay as §4 has them',
  seenIn: 'vLLM\'s Marlin MoE paths (gptq_marlin_moe_repack / awq_marlin_moe_repack, marlin_moe_permute_scales, moe_awq_to_marlin_zero_points) for GPTQ, AWQ and compressed-tensors W4A16 experts; SGLang\'s copies of them',
  toCanonical: (ranks, { dims }) =>
    ranks.map((r) =>
      withTensors(r, (out) => {
        for (const L of layersOf(r.tensors)) {
          for (const w of ['w13', 'w2'] as const) {
            const g = marlinGeometry(dims, w, r.req.tpSize);
            const name = `layers.${L}.experts.${w}`;
            const t = out.get(name);
            if (!g || t?.dtype !== 'I32') continue;
            const { K, N, G, q } = g;
            const S = t.shape[0] ?? 0;
            const packing = { alongRows: q.packRows === true, ...(q.rowNibbles && { rowNibbles: q.rowNibbles }) };
            checkShape(t, [S, K / MARLIN_TILE_K, 2 * N], 'marlin', r.req, name, `a Marlin-repacked weight [E_local, K/16, 2N] (K = ${K}, N = ${N})`);
            out.set(name, { dtype: 'I32', shape: q.packRows ? [S, N / 8, K] : [S, N, K / 8], bytes: marlinWeightBytes(t.bytes, S, K, N, packing, false) });
            const s = checkShape(out.get(`${name}_scale`), [S, G, N], 'marlin', r.req, `${name}_scale`, `Marlin-permuted scales [E_local, G, N] (G = ${G})`);
            out.set(`${name}_scale`, { dtype: s.dtype, shape: [S, N, G], bytes: marlinScaleBytes(s.bytes, S, G, N, elemBytes(s), false) });
            const z = out.get(`${name}_zero`);
            if (z) out.set(`${name}_zero`, { dtype: z.dtype, shape: [S, N / 8, G], bytes: marlinZeroBytes(checkShape(z, [S, G, N / 8], 'marlin', r.req, `${name}_zero`, 'Marlin-packed zero points [E_local, G, N/8]').bytes, S, G, N, packing, false) });
          }
        }
      }),
    ),
};

/** How many shared-expert slots of size I the model's shared expert makes (0: the form does not apply). */
export function sharedSlots(dims: FormDims): number {
  return dims.sharedIntermediate > 0 && dims.sharedIntermediate % dims.intermediate === 0 ? dims.sharedIntermediate / dims.intermediate : 0;
}

const sharedExpertSlots: EngineForm = {
  name: 'shared-expert-slots',
  holds: 'the shared expert (`Is = n * I`) as `n` extra expert slots appended on every rank: `experts.ids` ends with `E .. E+n-1`, slot `E+j` holds rows (columns) `j*I .. (j+1)*I` of the shared gate, up and down, cut for TP like a routed expert; `shared.w13`/`shared.w2` absent; zero biases where the experts have biases. Only where `Is` is a multiple of `I` and the experts are not quantized; otherwise the shared expert stays in `shared.*`',
  seenIn: 'SGLang\'s shared-experts fusion for DeepSeek (`num_fused_shared_experts`), AITER\'s fused shared experts',
  toCanonical: (ranks, { dims }) => {
    const form = 'shared-expert-slots';
    const n = sharedSlots(dims);
    if (n === 0) return ranks;
    const E = dims.experts;
    // Per rank: the shared slots cut off the experts tensors, as [n, Ir, H] gate, up and [n, H, Ir] down.
    const pieces = new Map<RankOutput, Map<number, { gate: Tensor; up: Tensor; down: Tensor }>>();
    const stripped = ranks.map((r) =>
      withTensors(r, (out) => {
        const byLayer = new Map<number, { gate: Tensor; up: Tensor; down: Tensor }>();
        pieces.set(r, byLayer);
        for (const L of layersOf(r.tensors)) {
          if (quantized(r.tensors, L)) continue;
          const p = `layers.${L}.`;
          for (const s of ['shared.w13', 'shared.w2']) {
            if (out.has(p + s)) throw new FormMismatch(form, r.req, `the shared expert must be in expert slots ${E}..${E + n - 1}, not in ${s}`, { tensor: p + s, expected: 'absent', found: 'present' });
          }
          const ids = int32s(out.get(p + 'experts.ids')!);
          const S = ids.length;
          const tail = ids.slice(Math.max(0, S - n));
          const wantTail = Array.from({ length: n }, (_, j) => E + j);
          if (S < n || tail.join() !== wantTail.join() || ids.slice(0, S - n).some((e) => e >= E)) {
            throw new FormMismatch(form, r.req, `experts.ids must end with the ${n} shared slots ${E}..${E + n - 1} (and hold no other id >= E)`, { tensor: p + 'experts.ids', expected: `[..., ${wantTail}]`, found: `[${ids}]` });
          }
          const routed = Array.from({ length: S - n }, (_, i) => i);
          const shared = Array.from({ length: n }, (_, j) => S - n + j);
          for (const [k, t] of r.tensors) {
            if (!k.startsWith(p + 'experts.') || k === p + 'experts.ids') continue;
            if (t.shape[0] !== S) throw new FormMismatch(form, r.req, 'an experts tensor holds a different number of slots than experts.ids', { tensor: k, expected: `${S} slots`, found: `[${t.shape}]` });
            if (k.endsWith('_bias')) checkZero(pickSlots(t, shared), 0, 0, n, form, r.req, k, 'a shared slot\'s bias (the shared expert has none)');
            out.set(k, pickSlots(t, routed));
          }
          out.set(p + 'experts.ids', int32Tensor(ids.slice(0, S - n)));
          const w13 = pickSlots(r.tensors.get(p + 'experts.w13')!, shared);
          const half = w13.shape[1]! / 2;
          byLayer.set(L, { gate: selectAxis(w13, 1, [[0, half]]), up: selectAxis(w13, 1, [[half, 2 * half]]), down: pickSlots(r.tensors.get(p + 'experts.w2')!, shared) });
        }
      }),
    );
    // Per EP rank: the whole shared expert from its TP ranks' slots, then the canonical TP cut.
    return stripped.map((r, i) => {
      const T = r.req.tpSize;
      const byLayer = pieces.get(ranks[i]!)!;
      return withTensors(r, (out) => {
        for (const [L] of byLayer) {
          const tps = Array.from({ length: T }, (_, t) => {
            const other = rankAt(ranks, t, r.req.epRank, form);
            const got = pieces.get(other)?.get(L);
            if (!got) throw new FormMismatch(form, other.req, `layer ${L}'s shared slots are missing on this rank while TP rank ${r.req.tpRank} holds them`, { tensor: `layers.${L}.experts.ids`, layer: L, expected: `ids ending with ${E}..${E + n - 1}`, found: 'no shared slots' });
            return got;
          });
          // Slot j of TP rank t holds rows j*I + t*Ir ..: concatenated over t per slot, then the slots in order.
          const flat = (part: 'gate' | 'up') => {
            const whole = concatAxis(tps.map((x) => x[part]), 1); // [n, I, H]
            return { ...whole, shape: [whole.shape[0]! * whole.shape[1]!, whole.shape[2]!] };
          };
          const downs = concatAxis(tps.map((x) => x.down), 2); // [n, H, I]
          const down = concatAxis(Array.from({ length: n }, (_, j) => { const s = pickSlots(downs, [j]); return { ...s, shape: s.shape.slice(1) }; }), 1); // [H, Is]
          const Isr = dims.sharedIntermediate / T;
          const rows: [number, number] = [r.req.tpRank * Isr, (r.req.tpRank + 1) * Isr];
          out.set(`layers.${L}.shared.w13`, concatAxis([selectAxis(flat('gate'), 0, [rows]), selectAxis(flat('up'), 0, [rows])], 0));
          out.set(`layers.${L}.shared.w2`, selectAxis(down, 1, [rows]));
        }
      });
    });
  },
};

const sharedReplicated: EngineForm = {
  name: 'shared-replicated',
  holds: 'the shared expert whole on every TP rank: `shared.w13` `[2*Is, H]`, `shared.w2` `[H, Is]`, the same bytes on every rank; the harness counts it once',
  seenIn: 'vLLM and SGLang when the shared expert runs outside the TP group (replicated linear layers), TensorRT-LLM\'s shared-expert overlap',
  toCanonical: (ranks, { dims }) => {
    const form = 'shared-replicated';
    const Is = dims.sharedIntermediate;
    if (Is === 0) return ranks;
    const first = ranks[0]!;
    return ranks.map((r) =>
      withTensors(r, (out) => {
        for (const key of r.tensors.keys()) {
          const m = /^layers\.(\d+)\.shared\.(w13|w2)$/.exec(key);
          if (!m) continue;
          const t = r.tensors.get(key)!;
          const H = t.shape[m[2] === 'w13' ? 1 : 0]!;
          checkShape(t, m[2] === 'w13' ? [2 * Is, H] : [H, Is], form, r.req, key, 'a replicated shared tensor (whole on every rank)');
          const ref = first.tensors.get(key);
          if (!ref) throw new FormMismatch(form, first.req, 'a replicated shared tensor is missing', { tensor: key, expected: 'present', found: 'absent' });
          const d = firstDiffering(ref, t);
          if (d) throw new FormMismatch(form, r.req, `the replicated shared expert differs from ${rankName(first.req)}'s copy at [${d.at}]`, { tensor: key, layer: Number(m[1]), expected: d.a, found: d.b });
          const Isr = Is / r.req.tpSize;
          const [a, b] = [r.req.tpRank * Isr, (r.req.tpRank + 1) * Isr];
          out.set(key, m[2] === 'w13' ? selectAxis(t, 0, [[a, b], [Is + a, Is + b]]) : selectAxis(t, 1, [[a, b]]));
        }
      }),
    );
  },
};

const eplb: EngineForm = {
  name: 'eplb',
  holds: 'EPLB redundant experts: an EP rank holds any physical slots, `experts.ids` naming each slot\'s logical expert (ids may repeat, within a rank and across ranks, and the slot count may exceed `E_local`); every logical expert is held at least once and every physical slot equals its logical expert bit for bit',
  seenIn: 'vLLM\'s and SGLang\'s expert-parallel load balancer (EPLB, DeepSeek\'s redundant experts): `num_redundant_experts`, a physical-to-logical map',
  toCanonical: (ranks, { dims }) => {
    const form = 'eplb';
    const E = dims.experts;
    // For each TP rank, per layer, the first physical copy of every logical expert, its slices by tensor.
    const home = new Map<string, { q: number; slot: number; slices: Map<string, Tensor> }>();
    for (const r of ranks) {
      const names = expertNamesByLayer(r.tensors);
      for (const L of layersOf(r.tensors)) {
        const p = `layers.${L}.experts.`;
        const ids = int32s(r.tensors.get(p + 'ids')!);
        ids.forEach((e, slot) => {
          if (!(e >= 0 && e < E)) throw new FormMismatch(form, r.req, `physical slot ${slot} names no logical expert`, { tensor: p + 'ids', layer: L, expected: `an id in 0..${E - 1}`, found: e });
          const slices = new Map<string, Tensor>();
          for (const k of names.get(String(L)) ?? []) if (k !== p + 'ids') slices.set(k, pickSlots(r.tensors.get(k)!, [slot]));
          const key = `${r.req.tpRank}|${L}|${e}`;
          const prev = home.get(key);
          if (!prev) {
            home.set(key, { q: r.req.epRank, slot, slices });
            return;
          }
          for (const [k, t] of slices) {
            const d = prev.slices.get(k) ? firstDiffering(prev.slices.get(k)!, t) : { at: [0], a: 'present', b: 'absent' };
            if (d) throw new FormMismatch(form, r.req, `physical slot ${slot} holds expert ${e} but differs from its copy in EP rank ${prev.q} slot ${prev.slot} at [${d.at.slice(1)}]`, { tensor: k, layer: L, expected: d.a, found: d.b });
          }
        });
      }
    }
    return ranks.map((r) => {
      const origins = new Map<number, Array<{ epRank: number; slot: number }>>();
      const names = expertNamesByLayer(r.tensors);
      const mapped = withTensors(r, (out) => {
        for (const L of layersOf(r.tensors)) {
          const p = `layers.${L}.experts.`;
          const want = expertsOf(E, r.req.epSize, r.req.epRank, r.req.epPlacement);
          const copies = want.map((e) => {
            const c = home.get(`${r.req.tpRank}|${L}|${e}`);
            if (!c) {
              const held = [...home.keys()].filter((k) => k.startsWith(`${r.req.tpRank}|${L}|`)).map((k) => Number(k.split('|')[2])).sort((a, b) => a - b);
              throw new FormMismatch(form, r.req, `logical expert ${e} is held by no physical slot of any EP rank`, { tensor: p + 'ids', layer: L, expected: `every id 0..${E - 1}`, found: `[${held}]` });
            }
            return c;
          });
          for (const k of names.get(String(L)) ?? []) {
            if (k === p + 'ids') continue;
            out.set(k, concatAxis(copies.map((c) => c.slices.get(k)!), 0));
          }
          out.set(p + 'ids', int32Tensor(want));
          origins.set(L, copies.map((c) => ({ epRank: c.q, slot: c.slot })));
        }
      });
      return { ...mapped, origins };
    });
  },
};

/** Every engine form, in the order the harness undoes them (per-slot layout first, then shared experts, then expert placement). */
export const ENGINE_FORMS: readonly EngineForm[] = [transposed, padIr, marlin, w31, sharedExpertSlots, sharedReplicated, eplb];

const PAD = /^pad-ir-(\d+)$/;
const EXCLUSIVE: ReadonlyArray<[string, string]> = [['shared-replicated', 'shared-expert-slots']];

/** The form list a loader declares, checked: known names, each once, a pad >= 1, no two that exclude each other. */
export function parseForms(names: readonly string[]): FormSet {
  const seen = new Set<string>();
  let padIr: number | undefined;
  for (const raw of names) {
    const name = raw.trim();
    const pad = PAD.exec(name);
    const base = pad ? 'pad-ir-N' : name;
    if (!ENGINE_FORMS.some((f) => f.name === base)) {
      throw new FormDeclarationError('unknown engine form', { expected: ENGINE_FORMS.map((f) => f.name).join(' | '), found: name });
    }
    if (pad) {
      const n = Number(pad[1]);
      if (!Number.isSafeInteger(n) || n < 1) throw new FormDeclarationError('pad-ir-N needs a multiple N >= 1', { expected: 'pad-ir-N, N >= 1', found: name });
      padIr = n;
    }
    if (seen.has(base)) throw new FormDeclarationError('engine form declared twice', { expected: 'each form once', found: name });
    seen.add(base);
  }
  for (const [a, b] of EXCLUSIVE) {
    if (seen.has(a) && seen.has(b)) throw new FormDeclarationError(`engine forms ${a} and ${b} exclude each other (the shared expert is either replicated or in expert slots)`, { expected: `at most one of ${a}, ${b}`, found: names.join(',') });
  }
  const ordered = ENGINE_FORMS.filter((f) => seen.has(f.name)).map((f) => (f.name === 'pad-ir-N' ? `pad-ir-${padIr}` : f.name));
  return { names: ordered, ...(padIr !== undefined && { padIr }) };
}

/** The canonical ranks (spec §1) of a split whose loader declared `set`; with no form, the ranks as they are. */
export function toCanonicalRanks(set: FormSet, ranks: readonly RankOutput[], dims: FormDims): RankOutput[] {
  let out = [...ranks];
  if (set.names.length === 0) return out;
  for (const f of ENGINE_FORMS) {
    const declared = f.name === 'pad-ir-N' ? set.padIr !== undefined : set.names.includes(f.name);
    if (declared) out = f.toCanonical(out, { set, dims });
  }
  return out;
}
