// lfm2_moe: per-expert w1/w2/w3 under feed_forward with an expert_bias used for selection; sigmoid routing.
import type { ModelEntry } from '../model-type.js';
import { allLayers, correctionBias, dimsFrom, fusedV5, layer, perExpertW, router, siluGated } from './common.js';

export const lfm2_moe: ModelEntry = {
  modelType: 'lfm2_moe',
  dims: dimsFrom({
    experts: 'num_experts',
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    moeLayers: (c) => allLayers(c).filter((i) => i >= c.int('num_dense_layers', 2)),
    features: (c) => ({ correctionBias: c.bool('use_expert_bias', true) }),
  }),
  layouts: {
    original: { module: layer('feed_forward'), tensors: [router('gate.weight'), correctionBias('expert_bias'), ...perExpertW] },
    fused: { module: layer('feed_forward'), tensors: [router('gate.weight'), correctionBias('expert_bias'), ...fusedV5] },
  },
  routing: (c) => ({ kind: 'sigmoid_bias', renormalize: c.bool('norm_topk_prob', true), scaling: c.num('routed_scaling_factor', 1) }),
  activation: siluGated,
  generator: {
    shared: 'none',
    config: (s) => ({ hidden_size: s.hidden, num_hidden_layers: s.layers, num_experts_per_tok: s.topK, num_experts: s.experts, moe_intermediate_size: s.intermediate, num_dense_layers: 0, use_expert_bias: true }),
  },
};
