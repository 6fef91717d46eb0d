// Gate's and up's per-projection scales (spec §4, companion tensors of the other formats): a
// per-tensor static FP8 `w13_scale` [E, 2, 1] and NVFP4's `w13_scale_2` / `w13_input_scale`
// [E, 2] hold one value for gate and one for up. Engines that want one scale per expert merge
// them: vLLM's per-tensor FP8 MoE requantizes both halves to max(gate, up) ("Fp8 moe kernel
// needs single weight scale for w13 per expert"), its NVFP4 MoE keeps w13_weight_scale_2[:, 0]
// (gate's), its static input scales become one maximum per layer. The canonical form keeps both
// (every entry, spec §4), so a merged or swapped pair is a loader bug; this names which, from the
// pairs, and names F8 weights requantized to a merged scale. Only what every differing slot
// shows is named: where gate's scale is also the larger in every such slot, gate's and the
// maximum both fit, and both are said unless the weights tell them apart.
import type { Canonical, Tensor } from '../tensor.js';
import { decodeFloats64, encodeFloats } from '../safetensors/codecs.js';
import { idsFor, ranges } from './locate.js';

/** A tensor of one gate/up pair per slot: per-tensor FP8 `w13_scale`, NVFP4 `w13_scale_2`, `w13_input_scale` (routed or shared). */
const PAIRED = /\.(experts|shared)\.w13_(scale|scale_2|input_scale)$/;

type Merge = 'swapped' | 'gate' | 'up' | 'max';

export interface PairFinding {
  kind: 'gate-up-swapped' | 'gate-up-scales-merged' | 'requantized';
  detail: string;
}

/** Whether `t` holds one F32 [gate, up] pair per slot ([E, 2, 1], [E, 2]; shared: [2, 1], [2]) under a gate/up scale's name. */
export function isScalePair(name: string, t: Tensor): boolean {
  const per = t.shape.slice(/\.experts\./.test(name) ? 1 : 0);
  return t.dtype === 'F32' && PAIRED.test(name) && per[0] === 2 && per.slice(1).every((n) => n === 1);
}

/** The [gate, up] values of every slot, or undefined where `t` is not one F32 pair per slot. */
function pairsOf(name: string, t: Tensor | undefined): Float64Array | undefined {
  return t !== undefined && isScalePair(name, t) ? decodeFloats64('F32', t.bytes) : undefined;
}

const suffixOf = (name: string) => /_(scale|scale_2|input_scale)$/.exec(name)![1]!;
/** The checkpoint's name of the companion, for a person: weight_scale, weight_scale_2, input_scale. */
const storedName = (name: string) => ({ scale: 'weight_scale', scale_2: 'weight_scale_2', input_scale: 'input_scale' })[suffixOf(name)]!;

function where(name: string, slots: readonly number[], expected: Canonical): string {
  if (!/\.experts\./.test(name)) return '';
  const ids = idsFor(name, expected);
  return `experts ${ranges(slots.map((s) => ids?.[s] ?? s).sort((a, b) => a - b))}: `;
}

/** Which relations hold between found and expected pairs in every slot that differs (none differing: undefined). */
function mergesOf(e: Float64Array, f: Float64Array): { differ: number[]; merges: Set<Merge> } | undefined {
  const differ: number[] = [];
  const merges = new Set<Merge>(['swapped', 'gate', 'up', 'max']);
  for (let s = 0; s < e.length / 2; s++) {
    const [eg, eu, fg, fu] = [e[2 * s]!, e[2 * s + 1]!, f[2 * s]!, f[2 * s + 1]!];
    if (fg === eg && fu === eu) continue;
    differ.push(s);
    const holds: Record<Merge, boolean> = { swapped: fg === eu && fu === eg, gate: fg === eg && fu === eg, up: fg === eu && fu === eu, max: fg === fu && fg === Math.max(eg, eu) };
    for (const m of [...merges]) if (!holds[m]) merges.delete(m);
  }
  return differ.length ? { differ, merges } : undefined;
}

/**
 * A gate/up scale pair tensor whose differing slots all hold the pair swapped, or one value for
 * both (gate's, up's, or the larger); or whose every entry is the largest of the layer's (one
 * scale per layer: over every expert, in `whole` where given, else over the rank's). Undefined where nothing of the kind explains every differing slot.
 */
export function scalePairFinding(name: string, expected: Canonical, found: Canonical, whole?: Canonical): PairFinding | undefined {
  const e = pairsOf(name, expected.get(name));
  const f = pairsOf(name, found.get(name));
  if (!e || !f || e.length !== f.length) return undefined;
  const m = mergesOf(e, f);
  if (!m) return undefined;
  const at = where(name, m.differ, expected);
  const what = storedName(name);
  if (m.merges.has('swapped')) return { kind: 'gate-up-swapped', detail: `${at}gate's and up's ${what} swapped (up's value first)` };
  const one = (which: 'gate' | 'up') => `${which}'s ${what} used for ${which === 'gate' ? 'up' : 'gate'} too`;
  const max = `max(gate, up) in both entries (one ${what} per expert)`;
  const kept = ' (the canonical form keeps gate\'s and up\'s, spec §4)';
  for (const which of ['gate', 'up'] as const) {
    if (!m.merges.has(which)) continue;
    if (!m.merges.has('max')) return { kind: 'gate-up-scales-merged', detail: `${at}${one(which)}${which === 'gate' && what === 'weight_scale_2' ? ' (one kept per expert, as vLLM keeps w13_weight_scale_2[:, 0])' : ''}${kept}` };
    // Gate's (up's) is also the larger in every differing slot: an FP8 weight scale's weights may tell which where they were
    // requantized (to the maximum); codes kept as stored fit either, the maximum taken without requantizing to it.
    const w = suffixOf(name) === 'scale' ? requantizedWeights(name.slice(0, -'_scale'.length), expected, found) : undefined;
    if (w === 'kept') return { kind: 'gate-up-scales-merged', detail: `${at}${one(which)}, or ${max} without the codes requantized to it (${which}'s is the larger in every expert that differs): the ${which === 'gate' ? 'up' : 'gate'} rows' codes kept as stored${kept}` };
    if (w !== undefined) return { kind: 'gate-up-scales-merged', detail: `${at}${max}, the other half's codes requantized to it (vLLM's per-tensor FP8 MoE: one w13 scale per expert)${kept}` };
    return { kind: 'gate-up-scales-merged', detail: `${at}${one(which)}, or ${max} (${which}'s is the larger in every expert that differs: these slots cannot tell the two apart)${kept}` };
  }
  if (m.merges.has('max')) return { kind: 'gate-up-scales-merged', detail: `${at}${max}${kept}` };
  // One value in every entry of every slot: the largest of the layer's (vLLM's static input scales, one per MoE layer,
  // the maximum over every expert: on an EP rank it may be another rank's, found in the whole reference), or of the rank's.
  const all = pairsOf(name, whole?.get(name));
  const tops: Array<[Float64Array | undefined, string]> = [[all, 'layer\'s experts'], [e, 'rank\'s experts']];
  for (const [pairs, of] of tops) {
    if (pairs === undefined || pairs.length <= 2) continue;
    const top = pairs.reduce((a, b) => Math.max(a, b), -Infinity);
    if (f.every((v) => v === top)) return { kind: 'gate-up-scales-merged', detail: `every entry holds ${top}, the largest ${what} of the ${of} (one per layer, the maximum over experts and gate/up)${kept}` };
  }
  return undefined;
}

/** Slots grouped by which halves a relation holds for ("up", "gate", "gate and up"). */
function byHalves(halvesOf: Map<number, Array<'gate' | 'up'>>): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (const [slot, halves] of halvesOf) groups.set(halves.join(' and '), [...(groups.get(halves.join(' and ')) ?? []), slot]);
  return groups;
}

/** E4M3's spacing at |x|: a value requantized by any rounding lands within one step of the exact quotient. */
function e4m3Step(x: number): number {
  const a = Math.abs(x);
  return a < 2 ** -6 ? 2 ** -9 : 2 ** (Math.floor(Math.log2(a)) - 3);
}

/**
 * Per slot and half of an F8_E4M3 `w13` against its expected codes, given both sides' per-tensor
 * scales: 'kept' where every half whose found scale changed kept its codes, the halves (by slot)
 * whose codes were requantized to the found scale (each found value within one E4M3 step of
 * q · s / s', and unchanged halves bit-equal), or undefined where neither holds.
 */
function requantizedWeights(w13: string, expected: Canonical, found: Canonical): 'kept' | Map<number, Array<'gate' | 'up'>> | undefined {
  const [ew, fw] = [expected.get(w13), found.get(w13)];
  const es = pairsOf(`${w13}_scale`, expected.get(`${w13}_scale`));
  const fs = pairsOf(`${w13}_scale`, found.get(`${w13}_scale`));
  if (!ew || !fw || !es || !fs || ew.dtype !== 'F8_E4M3' || fw.dtype !== 'F8_E4M3' || ew.bytes.length !== fw.bytes.length || es.length !== fs.length) return undefined;
  const half = ew.bytes.length / es.length;
  if (!Number.isInteger(half)) return undefined;
  let kept = true;
  const requantized = new Map<number, Array<'gate' | 'up'>>();
  for (let p = 0; p < es.length; p++) {
    const [a, b] = [p * half, (p + 1) * half];
    const same = ew.bytes.subarray(a, b).every((x, i) => x === fw.bytes[a + i]);
    if (es[p] === fs[p]) {
      if (!same) return undefined;
      continue;
    }
    if (same) continue;
    kept = false;
    const q = decodeFloats64('F8_E4M3', ew.bytes.subarray(a, b));
    const v = decodeFloats64('F8_E4M3', fw.bytes.subarray(a, b));
    const ratio = es[p]! / fs[p]!;
    for (let i = 0; i < q.length; i++) {
      const x = q[i]! * ratio;
      const ok = Math.abs(x) > 448 ? Math.abs(v[i]!) === 448 && Math.sign(v[i]!) === Math.sign(x) : Math.abs(v[i]! - x) <= e4m3Step(x);
      if (!ok) return undefined;
    }
    const slot = Math.floor(p / 2);
    requantized.set(slot, [...(requantized.get(slot) ?? []), p % 2 === 0 ? 'gate' : 'up']);
  }
  return kept ? 'kept' : requantized;
}

/**
 * An F8_E4M3 `w13` whose differing halves are the checkpoint's codes requantized to the scale
 * the loader wrote in `w13_scale` (one E4M3 step of rounding allowed): one finding per set of
 * halves, saying whether that scale is max(gate, up). Undefined where that does not explain it.
 */
export function requantizedToScale(name: string, expected: Canonical, found: Canonical): PairFinding[] | undefined {
  if (!/\.(experts|shared)\.w13$/.test(name)) return undefined;
  const r = requantizedWeights(name, expected, found);
  if (r === undefined || r === 'kept' || r.size === 0) return undefined;
  const es = pairsOf(`${name}_scale`, expected.get(`${name}_scale`))!;
  const fs = pairsOf(`${name}_scale`, found.get(`${name}_scale`))!;
  const toMax = [...r.keys()].every((s) => fs[2 * s] === fs[2 * s + 1] && fs[2 * s] === Math.max(es[2 * s]!, es[2 * s + 1]!));
  const to = toMax ? 'max(gate, up), the one w13 scale per expert the loader wrote (vLLM\'s per-tensor FP8 MoE requantizes so)' : 'the w13_scale the loader wrote';
  return [...byHalves(r)].map(([halves, slots]) => ({
    kind: 'requantized' as const,
    detail: `${where(name, slots, expected)}the ${halves} ${halves.includes(' and ') ? 'halves\'' : 'half\'s'} F8_E4M3 codes requantized to ${to}: each is the stored q · s / s' within one E4M3 step (lossy; the canonical form keeps the stored codes and both scales)`,
  }));
}

/**
 * An F32 `w13` (the dequantized form) whose halves are the checkpoint's per-tensor FP8 codes
 * requantized to max(gate, up) and dequantized with it, as vLLM's FP8 MoE computes with: each
 * found value is fround(c · max) for an E4M3 value c within one E4M3 step of q · s / max (any
 * rounding of the requantization), and the half whose scale is the maximum is the exact
 * dequantization. One finding per set of requantized halves, or undefined.
 */
export function dequantizedAfterMaxRequant(name: string, found: Tensor, stored: Canonical): PairFinding[] | undefined {
  const [w, s] = [stored.get(name), pairsOf(`${name}_scale`, stored.get(`${name}_scale`))];
  if (!/\.(experts|shared)\.w13$/.test(name) || !w || !s || w.dtype !== 'F8_E4M3' || found.dtype !== 'F32' || found.bytes.length !== 4 * w.bytes.length) return undefined;
  const q = decodeFloats64('F8_E4M3', w.bytes);
  const v = decodeFloats64('F32', found.bytes);
  const half = q.length / s.length;
  const requantized = new Map<number, Array<'gate' | 'up'>>();
  for (let p = 0; p < s.length; p++) {
    const max = Math.max(s[p]!, s[p ^ 1]!);
    let exact = true;
    for (let i = p * half; i < (p + 1) * half; i++) {
      if (v[i] === Math.fround(q[i]! * s[p]!)) continue;
      exact = false;
      // Not the exact dequantization: some E4M3 c with fround(c · max) = v near q · s / max, and only where this half's scale was not the maximum.
      const c = decodeFloats64('F8_E4M3', encodeFloats('F8_E4M3', [v[i]! / max]))[0]!;
      const x = (q[i]! * s[p]!) / max;
      if (s[p] === max || Math.fround(c * max) !== v[i] || Math.abs(c - x) > e4m3Step(x)) return undefined;
    }
    if (!exact) requantized.set(Math.floor(p / 2), [...(requantized.get(Math.floor(p / 2)) ?? []), p % 2 === 0 ? 'gate' : 'up']);
  }
  if (requantized.size === 0) return undefined;
  return [...byHalves(requantized)].map(([halves, slots]) => ({
    kind: 'requantized' as const,
    detail: `${where(name, slots, stored)}the ${halves} half dequantized from its F8_E4M3 codes requantized to max(gate, up) (one w13 weight_scale per expert, as vLLM's per-tensor FP8 MoE computes): each value is an E4M3 value within one step of q · s / max, times max (lossy; the dequantized form is q · s with the checkpoint's codes and scales)`,
  }));
}
