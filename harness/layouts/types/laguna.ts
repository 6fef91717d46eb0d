// laguna: qwen2_moe's per-expert tensors; the original keeps the selection bias at
// experts.e_score_correction_bias and the shared MLP as shared_expert, v5 moves them to
// gate.e_score_correction_bias and shared_experts. Routing: logits optionally soft-capped
// (tanh(l/c)·c, moe_router_logit_softcapping > 0), σ, top-k of σ + bias, renormalised, and
// the routed sum × moe_routed_scaling_factor; the shared MLP (shared_expert_intermediate_size)
// is added unscaled. MoE where mlp_layer_types says "sparse".
import type { LayoutName, ModelEntry, ModuleLayout, TensorSpec } from '../model-type.js';
import { allLayers, allSparse, correctionBias, dimsFrom, fusedV5, layer, layersOfType, perExpertProj, router, sharedMlp, siluGated } from './common.js';

const NAMES: Record<LayoutName, { bias: string; shared: string }> = {
  original: { bias: 'experts.e_score_correction_bias', shared: 'shared_expert' },
  fused: { bias: 'gate.e_score_correction_bias', shared: 'shared_experts' },
};
const block = (l: LayoutName, experts: TensorSpec[]): ModuleLayout => ({
  module: layer('mlp'),
  tensors: [router('gate.weight'), correctionBias(NAMES[l].bias), ...experts, ...sharedMlp(NAMES[l].shared)],
});

export const laguna: ModelEntry = {
  modelType: 'laguna',
  dims: dimsFrom({
    experts: 'num_experts',
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('shared_expert_intermediate_size'),
    moeLayers: layersOfType('mlp_layer_types', 'sparse', allLayers),
    // LagunaSparseMoeBlock builds the shared MLP whatever its size.
    features: () => ({ correctionBias: true, sharedExpert: true }),
  }),
  layouts: { original: block('original', perExpertProj), fused: block('fused', fusedV5) },
  routing: (c) => {
    const cap = c.num('moe_router_logit_softcapping', 0);
    return {
      kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true,
      scaling: c.num('moe_routed_scaling_factor', 1),
      ...(cap > 0 ? { softcap: cap } : {}),
    };
  },
  activation: siluGated,
  generator: {
    shared: 'free',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      num_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      shared_expert_intermediate_size: Is,
      moe_router_logit_softcapping: s.experts % 2 === 0 ? 4 : 0,
      ...allSparse(s),
    }),
  },
};
