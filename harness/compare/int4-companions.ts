// INT4 companions in the quantized form (spec §4, INT4 groups): zero points and activation-order
// group indices that a loader rewrote instead of keeping the checkpoint's. Each relation is
// checked on every element and named only where it holds for all of them:
// - `W_zero` with every 4-bit zero one more (less) than stored: GPTQ v1's `z - 1` converted to
//   v2's `z` (or the reverse), where the canonical form keeps the checkpoint's convention;
// - `W_g_idx` in column order (floor(j / gs)) where the checkpoint's is in activation order: g_idx
//   dropped;
// - w2's `W_g_idx` rebased to the rank's first group (minus r·Ir/gs), or holding another TP rank's
//   columns' groups (TP rank 0's: g_idx not cut), where the canonical form holds the rank's
//   columns' global groups;
// - w13's `W_g_idx` with gate's and up's swapped, or one of them for both (vLLM's fused MoE keeps
//   one `w13_g_idx` per expert: the last projection loaded wins).
import type { Canonical, ParallelRequest, Tensor } from '../tensor.js';
import { idsFor, int32Values, ranges } from './locate.js';

export interface Int4Finding {
  kind: 'zero-point-off-by-one' | 'group-index-misapplied' | 'gate-up-swapped';
  detail: string;
}

export interface Int4Context {
  req?: ParallelRequest;
  /** The reference at TP 1, EP 1 in the quantized form, where given: another rank's columns are searched there. */
  whole?: Canonical;
  /** The checkpoint's scheme, where known: its group size and zero convention. */
  scheme?: { method: string; group?: number; zerosMinusOne?: boolean };
}

const COMPANION = /\.(experts|shared)\.(w13|w2)_(zero|g_idx)$/;

/** What a loader did to an INT4 `_zero` or `_g_idx` tensor of the quantized form, or undefined. */
export function int4CompanionFinding(name: string, expected: Canonical, found: Canonical, ctx: Int4Context): Int4Finding | undefined {
  const m = COMPANION.exec(name);
  const [e, f] = [expected.get(name), found.get(name)];
  if (!m || !e || !f || e.dtype !== 'I32' || f.dtype !== 'I32' || e.bytes.length !== f.bytes.length) return undefined;
  return m[3] === 'zero' ? zeroOffByOne(e, f, ctx) : gIdxFinding(name, m[2] as 'w13' | 'w2', e, f, expected, ctx);
}

function zeroOffByOne(e: Tensor, f: Tensor, ctx: Int4Context): Int4Finding | undefined {
  const [ew, fw] = [new Uint32Array(e.bytes.slice().buffer), new Uint32Array(f.bytes.slice().buffer)];
  for (const d of [1, -1]) {
    let ok = true;
    for (let i = 0; i < ew.length && ok; i++) for (let k = 0; k < 8 && ok; k++) ok = ((((ew[i]! >>> (4 * k)) & 15) + d + 16) & 15) === ((fw[i]! >>> (4 * k)) & 15);
    if (!ok) continue;
    const gptq = ctx.scheme?.method === 'int4-gptq';
    const why = !gptq
      ? ''
      : ctx.scheme!.zerosMinusOne
        ? d === 1
          ? ': GPTQ v1 zeros (stored z - 1, checkpoint_format "gptq") converted to v2\'s z, where the canonical form keeps them as stored'
          : ': GPTQ v1 zeros (stored z - 1) lowered once more'
        : d === -1
          ? ': GPTQ v2 zeros (stored z, checkpoint_format "gptq_v2") written in v1\'s z - 1, where the canonical form keeps them as stored'
          : ': GPTQ v2 zeros (stored z) raised by one';
    return { kind: 'zero-point-off-by-one', detail: `every 4-bit zero point ${d === 1 ? 'one more' : 'one less'} than the checkpoint's (mod 16)${why}` };
  }
  return undefined;
}

function gIdxFinding(name: string, w: 'w13' | 'w2', e: Tensor, f: Tensor, expected: Canonical, ctx: Int4Context): Int4Finding | undefined {
  const [ev, fv] = [int32Values(e)!, int32Values(f)!];
  const cols = e.shape[e.shape.length - 1]!;
  const r = ctx.req?.tpRank ?? 0;
  // w2's columns on a TP rank are global columns r*cols .. (r+1)*cols; w13's (H) are whole.
  const start = w === 'w2' ? r * cols : 0;
  const same = (g: (k: number) => number) => fv.every((v, k) => v === g(k));
  const group = ctx.scheme?.group;
  if (group !== undefined && same((k) => Math.floor((start + (k % cols)) / group))) {
    return { kind: 'group-index-misapplied', detail: `g_idx in column order (column j in group floor(j / ${group})): the checkpoint's activation-order group indices dropped` };
  }
  if (w === 'w2' && r > 0 && group !== undefined && same((k) => ev[k]! - (r * cols) / group)) {
    return { kind: 'group-index-misapplied', detail: `g_idx rebased to the rank's first group (each minus ${r}·${cols}/${group} = ${(r * cols) / group}): the canonical form keeps the global groups of the rank's columns (spec §4)` };
  }
  if (w === 'w2' && (ctx.req?.tpSize ?? 1) > 1) {
    const other = otherRankColumns(name, fv, cols, expected, ctx);
    if (other !== undefined) return { kind: 'group-index-misapplied', detail: `g_idx of TP rank ${other}'s columns ${other * cols}..${(other + 1) * cols} on TP rank ${r}/${ctx.req!.tpSize}${other === 0 ? ' (g_idx not cut for TP: its first columns taken)' : ''}` };
  }
  if (w === 'w13' && e.shape[e.shape.length - 2] === 2) return halves(name, ev, fv, cols, expected);
  return undefined;
}

/** The other TP rank whose columns' groups (in the whole g_idx) the found w2 g_idx holds in every slot, or undefined. */
function otherRankColumns(name: string, fv: number[], cols: number, expected: Canonical, ctx: Int4Context): number | undefined {
  const wv = int32Values(ctx.whole?.get(name));
  if (!wv || !ctx.req) return undefined;
  const { tpSize: T, tpRank: r } = ctx.req;
  const wholeCols = cols * T;
  // Slot s holds expert ids[s], the whole's slot ids[s] (a shared expert: one slot).
  const ids = idsFor(name, expected);
  const slots = fv.length / cols;
  for (let o = 0; o < T; o++) {
    if (o === r) continue;
    let ok = true;
    for (let s = 0; s < slots && ok; s++) {
      const x = ids?.[s] ?? s;
      for (let j = 0; j < cols && ok; j++) ok = fv[s * cols + j] === wv[x * wholeCols + o * cols + j];
    }
    if (ok) return o;
  }
  return undefined;
}

/** w13's [gate, up] g_idx swapped, or one of them in both (per slot, every differing slot alike). */
function halves(name: string, ev: number[], fv: number[], cols: number, expected: Canonical): Int4Finding | undefined {
  const slots = ev.length / (2 * cols);
  const part = (v: number[], s: number, h: number) => v.slice((2 * s + h) * cols, (2 * s + h + 1) * cols);
  const eq = (a: number[], b: number[]) => a.every((x, i) => x === b[i]);
  const holds = new Set(['swapped', 'gate', 'up']);
  const differ: number[] = [];
  for (let s = 0; s < slots; s++) {
    const [eg, eu, fg, fu] = [part(ev, s, 0), part(ev, s, 1), part(fv, s, 0), part(fv, s, 1)];
    if (eq(fg, eg) && eq(fu, eu)) continue;
    differ.push(s);
    if (!(eq(fg, eu) && eq(fu, eg))) holds.delete('swapped');
    if (!(eq(fg, eg) && eq(fu, eg))) holds.delete('gate');
    if (!(eq(fg, eu) && eq(fu, eu))) holds.delete('up');
  }
  if (differ.length === 0 || holds.size !== 1) return undefined;
  const ids = idsFor(name, expected);
  const at = /\.experts\./.test(name) ? `experts ${ranges(differ.map((s) => ids?.[s] ?? s).sort((a, b) => a - b))}: ` : '';
  const [how] = holds;
  if (how === 'swapped') return { kind: 'gate-up-swapped', detail: `${at}gate's and up's g_idx swapped` };
  const other = how === 'gate' ? 'up' : 'gate';
  return { kind: 'group-index-misapplied', detail: `${at}${how}'s g_idx used for ${other} too: one g_idx per expert for the fused w13 (vLLM's fused MoE keeps one w13_g_idx, the last projection loaded), where ${other}'s activation order differs` };
}
