// One interface for every implementation of the MoE forward: the float64 TypeScript
// reference and the gpu.js / hand-written fast paths, which are checked against it.
import type { MoeSemantics } from '../harness/layouts/semantics.js';
import type { Canonical, ParallelRequest } from '../harness/tensor.js';

/** One TP/EP rank's canonical tensors, with the request that produced them. */
export interface RankTensors {
  req: ParallelRequest;
  tensors: Canonical;
}

export interface MoeForwardResult {
  /** `[tokens, hidden]`, the sum of every rank's partial output (a simulated all-reduce). */
  output: Float64Array | Float32Array;
  /** `[tokens, experts]` raw router logits (before bias-free selection tweaks), when computed. */
  routerLogits?: Float64Array | Float32Array;
  /** `[tokens, topK]` selected global expert ids, in selection order. */
  selected?: Int32Array;
}

/** What a forward takes besides the hidden states (spec/loader-protocol.md §1, hash routing). */
export interface ForwardInputs {
  /** `[tokens]` the token ids, which a hash-routed layer (deepseek_v4's hash_moe) needs to choose experts. */
  tokenIds?: ArrayLike<number>;
  /** `[tokens, R]` the router state carried from the previous layer, which an MLP router's state layers add (zaya). */
  routerState?: ArrayLike<number>;
}

export interface MoeBackend {
  /** e.g. `reference-f64`, `gpujs-cpu`, `gpujs-webasm`, `gpujs-webgpu`. */
  readonly name: string;
  /**
   * Forward of MoE layer `layer` for `tokens` rows of `x` (`[tokens, hidden]`, float32),
   * computed rank by rank from each rank's own tensors and summed; `inputs.tokenIds` where
   * the layer is hash-routed.
   */
  forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number, inputs?: ForwardInputs): Promise<MoeForwardResult>;
  /**
   * What actually runs, for a person reading the output: the mode, the device or adapter
   * and the thread count (a silent fallback must be visible, not just caught).
   */
  describe?(): string;
  /** Releases devices; backends without any make this a no-op. */
  dispose?(): Promise<void>;
}
