// What one MoE block computes, as data (spec/layouts.md §2). The layout
// registry builds one of these per model type from config.json; kernels/ executes it.
// Nothing here is per-test: a routing variant is a value, not a code path in a test.
import type { QuantGeometry } from './ops.js';

/** How router logits `l = x·Wr^T (+ router bias)` become selected experts and weights. */
export type Routing =
  /** top-k of softmax(l); renormalise to sum 1 if `renormalize`; dbrx divides by the p-norm instead. */
  | { kind: 'softmax_topk'; renormalize: boolean; scaling: number }
  /** dbrx: top-k of softmax(l), weights divided by their `p`-norm (`moe_normalize_expert_weights`). */
  | { kind: 'softmax_topk_pnorm'; p: number }
  /** deepseek_v2: softmax; greedy or group-limited greedy (group score = max); never renormalised; × scaling. */
  | { kind: 'softmax_group_limited'; groups: number; topkGroups: number; scaling: number }
  /**
   * deepseek_v3, glm4_moe, dots1: s = σ(l), c = s + correction_bias; group score = sum of
   * the top-2 c of each group; keep topkGroups groups; top-k of c; weights s[idx];
   * if renormalize divide by (sum + 1e-20); × scaling. Experts of dropped groups score 0.0
   * (transformers' masked_fill 0.0), or -inf where `maskNegInf` (nemotron_h). With `softcap`
   * (laguna), the logits are first replaced by tanh(l / softcap) · softcap.
   */
  | { kind: 'sigmoid_group_limited_bias'; groups: number; topkGroups: number; renormalize: boolean; scaling: number; maskNegInf?: true; softcap?: number }
  /**
   * mistral4: p = softmax(l); group score = sum of the top-2 p of each group; keep
   * topkGroups groups (others score 0.0); top-k; weights p[idx], divided by (sum + 1e-20)
   * if renormalize; × scaling. longcat_flash (one group): the choice is by p + correction bias.
   */
  | { kind: 'softmax_group_top2'; groups: number; topkGroups: number; renormalize: boolean; scaling: number }
  /**
   * deepseek_v4: s = score(l) (σ, or sqrt(softplus(l)): `scoring_func`); top-k of s +
   * correction_bias; weights s[idx] / (sum + 1e-20) × scaling (always renormalised). In a
   * hash layer (`MoeSemantics.hash`) the ids are tid2eid[token id] instead, weights alike.
   */
  | { kind: 'score_bias_topk'; score: 'sigmoid' | 'sqrtsoftplus'; scaling: number }
  /**
   * doge's product keys (DogeCDMoE): the router gives 2·keys logits per token, read the way
   * transformers views them, `[T, 2K]` as `[2, T, K]` (x-scores of row t = flat[tK, tK + K),
   * y-scores = flat[TK + tK, ...): rows mix tokens, reproduced on purpose); both sorted, expert
   * `ix·K + iy` scores sx + sy; top-k of those K² sums; weights softmax over the k, divided by
   * their sum again if renormalize. Experts from K² on are never chosen.
   */
  | { kind: 'product_key'; keys: number; renormalize: boolean }
  /** ernie4_5_moe: p = softmax(l); top-k of p + correction_bias; weights p[idx] / max(sum, normMin). */
  | { kind: 'softmax_bias_normmin'; normMin: number }
  /** lfm2_moe: s = σ(l); top-k of s + expert_bias (correction_bias); weights s[idx], renormalised if asked; × scaling. */
  | { kind: 'sigmoid_bias'; renormalize: boolean; scaling: number }
  /** gpt_oss, granitemoe: top-k of l; softmax over the k selected; × scaling where given (cohere2_moe's average). */
  | { kind: 'topk_softmax'; scaling?: number }
  /** cohere2_moe (expert_selection_fn sigmoid): top-k of l; σ of the k selected, renormalised if asked; × scaling where given. */
  | { kind: 'topk_sigmoid'; renormalize: boolean; scaling?: number }
  /** llama4_text: top-k of l; s = σ(l[idx]) multiplies the expert's input, not its output. */
  | { kind: 'topk_sigmoid_input' }
  /**
   * inkling: the last `shared` of the experts the router scores are shared experts. s = σ(l);
   * top-k of the routed s + correction_bias; over the k chosen and the shared logits,
   * weights σ(l_j) / Σ σ(l) (softmax of logsigmoid) × scaling; the shared ones scale the
   * shared experts' outputs (RoutingResult.sharedWeights).
   */
  | { kind: 'sigmoid_bias_shared'; shared: number; scaling: number }
  /** phimoe: sparsemixer in eval mode (top-2), with `jitterEps = router_jitter_noise`. */
  | { kind: 'sparsemixer'; jitterEps: number };

export type ExpertActivation =
  /** down(silu(gate·x) * (up·x)) */
  | { kind: 'silu_gated' }
  /** gpt_oss: g = min(h_gate, limit), u = clamp(h_up, -limit, limit), ((u + 1) · g · σ(alpha·g)) */
  | { kind: 'gpt_oss_clamped'; alpha: number; limit: number }
  /** nemotron_h: non-gated, down(relu(up·x)²); the expert has no gate projection (canonical w13 is up only). */
  | { kind: 'relu2' }
  /** glm5_next: clamped SwiGLU, clamp before the activation: silu(min(g, limit)) · clamp(u, -limit, limit) (`swiglu_limit`). */
  | { kind: 'silu_clamped'; limit: number }
  /** step3p7: clamped SwiGLU, clamp after the activation: min(silu(g), limit) · clamp(u, -limit, limit). */
  | { kind: 'silu_clamped_after'; limit: number }
  /** gemma4: GeGLU, gelu_tanh(g) · u with gelu_tanh(g) = g/2 · (1 + tanh(√(2/π) · (g + 0.044715 g³))) (gelu_pytorch_tanh). */
  | { kind: 'gelu_tanh_gated' }
  /** doge: non-gated, down(silu(up·x)) (single-neuron experts: up = down_embed_e, down = up_embed_e). */
  | { kind: 'silu' };

/** Whether the activation multiplies a gate by an up projection (false: up and down only). */
export const isGated = (a: ExpertActivation): boolean => a.kind !== 'relu2' && a.kind !== 'silu';

export const SILU_GATED: ExpertActivation = { kind: 'silu_gated' };

export interface MoeSemantics {
  modelType: string;
  experts: number;
  topK: number;
  hidden: number;
  intermediate: number;
  /** Shared-expert intermediate size `Is`; 0 when the model has no shared expert. */
  sharedIntermediate: number;
  routing: Routing;
  activation: ExpertActivation;
  /** The shared expert's output is multiplied by σ(x · shared.gate). */
  sharedGate: boolean;
  /** The shared expert's activation where it is not SiLU-gated (nemotron_h: relu², non-gated). */
  sharedActivation?: ExpertActivation;
  /** The shared expert's output is multiplied by this (cohere2_moe's "average": 0.5, with routing scaling 0.5). */
  sharedScale?: number;
  /**
   * The last `zeroExperts` of the `experts` the router scores are zero-compute (identity)
   * experts (longcat_flash): choosing one adds weight · x; no rank holds weights for them, so
   * canonical expert ids stay below `experts - zeroExperts`.
   */
  zeroExperts?: number;
  /** Rows of `router.weight` where they are not the experts (doge's product keys: 2·keys). */
  routerRows?: number;
  /** The zero experts are skip classes (zaya's class E): choosing one adds nothing, not weight · x. */
  zeroExpertsSkip?: true;
  /**
   * The router logits come from an MLP (zaya's ZayaRouter), not x·Wrᵀ: r = down(x) (+ the
   * carried router state · state_scale in `stateLayers`), logits = out(gelu(fc2(gelu(fc1(
   * RMSNorm(r)))))) with RMSNorm weight `router.norm` and epsilon `eps`; `hidden` is R. The
   * forward of a state layer takes that state (`ForwardInputs.routerState`, `[T, R]`).
   */
  mlpRouter?: { hidden: number; eps: number; stateLayers: number[] };
  /**
   * Activations that differ by layer (step3p7's per-layer `swiglu_limits`): layer → the
   * routed (and shared) activation there, replacing `activation` (`sharedActivation`). Every
   * backend reads a layer's semantics through `atLayer`.
   */
  layerActivations?: Record<number, { activation: ExpertActivation; sharedActivation?: ExpertActivation }>;
  /**
   * gemma4's normalised inputs (the block's input x is the decoder layer's residual stream):
   * the router scores RMSNorm(x) · `router.input_scale` · H^-½ (RMSNorm without weight), the
   * experts (and a shared expert) run on RMSNorm(x) · `expert_input_norm`; RMSNorm(x) =
   * x / sqrt(mean(x²) + eps).
   */
  inputNorms?: { eps: number };
  /** gemma4: each routing weight, after renormalisation, × `router.expert_scale[expert]` (per-expert output scales). */
  expertOutputScale?: boolean;
  /** inkling: every routing weight (the shared experts' too) × `router.global_scale`. */
  routerGlobalScale?: boolean;
  /**
   * inkling: the last `sharedRouted` of the `experts` the router scores are the shared experts,
   * weighted per token by the routing (`sigmoid_bias_shared`) instead of σ(x · shared.gate).
   */
  sharedRouted?: number;
  /**
   * The block's output, routed + shared summed over every rank, goes through an RMSNorm
   * (axk1): y · w / sqrt(mean(y²) + eps), w = canonical `layers.L.output_norm`, whole on every rank.
   */
  outputNorm?: { eps: number };
  /** Decoder layer indices `L` that hold an MoE block, ascending. */
  moeLayers: number[];
  /**
   * Hash routing (deepseek_v4's hash_moe layers): in these MoE layers the experts of a token
   * are `tid2eid[token id]` (canonical `layers.L.router.tid2eid`, `[vocab, topK]`), so their
   * forward takes the token ids (`ForwardInputs.tokenIds`, each below `vocab`).
   */
  hash?: { layers: number[]; vocab: number };
  /** Quantized checkpoints (spec §4): ranks hold quantized `w13`/`w2` with scales, dequantized before the float forward. */
  quant?: QuantGeometry;
}

/** The semantics of MoE layer `layer`: `layerActivations` applied where the type has them. */
export function atLayer(sem: MoeSemantics, layer: number): MoeSemantics {
  const at = sem.layerActivations?.[layer];
  return at === undefined ? sem : { ...sem, ...at };
}
