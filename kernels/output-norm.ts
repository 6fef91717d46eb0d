// The block-output RMSNorm of semantics.outputNorm (axk1's post_mlp_layernorm): applied once,
// to the sum of every rank's output (routed experts, shared expert, zero-compute experts), as
// AXK1MoE does after its shared experts: y · w / sqrt(mean(y²) + eps). A norm of the sum is
// not a sum of per-rank norms, so every backend applies it on the host after combining the
// ranks. The weight `layers.L.output_norm` is whole on every rank; rank 0's is used (the
// reference checks that every rank holds the same bytes).
import type { MoeSemantics } from '../harness/layouts/semantics.js';
import type { RankTensors } from './backend.js';
import { decodeFloatTensor } from './experts.js';

/** `layers.L.output_norm` of rank 0, or undefined where the model has no output norm. */
export function outputNormWeight(sem: MoeSemantics, layer: number, ranks: RankTensors[]): Float64Array | undefined {
  if (sem.outputNorm === undefined) return undefined;
  return decodeFloatTensor(ranks[0]!, `layers.${layer}.output_norm`, [sem.hidden]);
}

/** `1 / sqrt(mean(y²) + eps)` of each token's row of `out` (`[tokens, hidden]`). */
export function inverseRms(out: ArrayLike<number>, tokens: number, hidden: number, eps: number): Float64Array {
  const inv = new Float64Array(tokens);
  for (let t = 0; t < tokens; t++) {
    let s = 0;
    for (let h = 0; h < hidden; h++) s += out[t * hidden + h]! * out[t * hidden + h]!;
    inv[t] = 1 / Math.sqrt(s / hidden + eps);
  }
  return inv;
}

/** Normalises `out` (`[tokens, hidden]`) in place where the semantics have an output norm. */
export function applyOutputNorm(sem: MoeSemantics, layer: number, ranks: RankTensors[], tokens: number, out: Float32Array | Float64Array): void {
  const w = outputNormWeight(sem, layer, ranks);
  if (w === undefined) return;
  const H = sem.hidden;
  const inv = inverseRms(out, tokens, H, sem.outputNorm!.eps);
  for (let t = 0; t < tokens; t++) for (let h = 0; h < H; h++) out[t * H + h] = w[h]! * out[t * H + h]! * inv[t]!;
}
