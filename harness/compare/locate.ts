// Where in a canonical tensor an element is, the way a person names it: expert (and slot),
// gate or up row, column. A flat element index tells nobody which expert or which half of
// w13 is wrong; this does. Axis names follow the canonical form of spec §1.
import type { Tensor } from '../tensor.js';

/** Row-major multi-index of flat element `index` in `shape`. */
export function positionOf(shape: readonly number[], index: number): number[] {
  const out: number[] = new Array(shape.length).fill(0);
  let rest = index;
  for (let a = shape.length - 1; a >= 0; a--) {
    const n = shape[a]!;
    if (n <= 0) return out;
    out[a] = rest % n;
    rest = Math.floor(rest / n);
  }
  return out;
}

/** The axes of a canonical tensor by name: 'expert' (a slot), 'gate-up' (gate rows then up rows), or a plain name. */
function axesOf(name: string, rank: number): string[] {
  const base = name.replace(/_scale$/, '');
  const rest = (from: number) => Array.from({ length: Math.max(0, rank - from) }, (_, i) => (i === 0 ? 'column' : `index ${i + from}`));
  if (/\.experts\.ids$/.test(name)) return ['slot'];
  if (/\.experts\.(w13|w13_bias)$/.test(base)) return ['expert', 'gate-up', ...rest(2)];
  if (/\.experts\./.test(base)) return ['expert', 'row', ...rest(2)];
  if (/\.shared\.w13$/.test(base)) return ['gate-up', ...rest(1)];
  if (/\.router\.(weight|bias|correction_bias)$/.test(base)) return ['router row (expert)', ...rest(1)];
  return ['row', ...rest(1)];
}

/**
 * "expert 5 (slot 1), up row 2, column 7". `ids` are the rank's `experts.ids` where known
 * (slot s holds expert ids[s]).
 */
export function describePosition(name: string, shape: readonly number[], position: readonly number[], ids?: readonly number[]): string {
  const axes = axesOf(name, shape.length);
  const parts = position.map((p, a) => {
    const axis = axes[a] ?? `index ${a}`;
    if (axis === 'expert') return ids?.[p] !== undefined ? `expert ${ids[p]} (slot ${p})` : `slot ${p}`;
    if (axis === 'gate-up') {
      const half = shape[a]! / 2;
      if (shape.length === a + 1 && /_bias$/.test(name)) return p < half ? `gate element ${p}` : `up element ${p - half}`;
      return p < half ? `gate row ${p}` : `up row ${p - half}`;
    }
    return `${axis} ${p}`;
  });
  return parts.length ? parts.join(', ') : 'its only element';
}

/** The values of an I32 tensor (an `experts.ids`), or undefined for any other dtype. */
export function int32Values(t: Tensor | undefined): number[] | undefined {
  if (!t || t.dtype !== 'I32') return undefined;
  const v = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  return Array.from({ length: Math.floor(t.bytes.length / 4) }, (_, i) => v.getInt32(4 * i, true));
}

/** `experts.ids` of the layer a tensor belongs to, from a canonical map (for describePosition). */
export function idsFor(name: string, tensors: ReadonlyMap<string, Tensor>): number[] | undefined {
  const layer = /^(layers\.\d+)\./.exec(name)?.[1];
  return int32Values(layer ? tensors.get(`${layer}.experts.ids`) : undefined);
}

/** "0–3, 5, 7" */
export function ranges(ns: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    out.push(j > i + 1 ? `${ns[i]}–${ns[j]}` : j === i + 1 ? `${ns[i]}, ${ns[j]}` : String(ns[i]));
    i = j + 1;
  }
  return out.join(', ');
}
