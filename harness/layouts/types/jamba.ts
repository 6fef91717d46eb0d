// jamba: MoE every expert_layer_period layers from expert_layer_offset; softmax top-k, not renormalised.
import type { ModelEntry } from '../model-type.js';
import { allLayers, dimsFrom, fusedV5, layer, perExpertProj, router, siluGated } from './common.js';

export const jamba: ModelEntry = {
  modelType: 'jamba',
  dims: dimsFrom({
    experts: 'num_experts',
    intermediate: 'intermediate_size',
    topK: 'num_experts_per_tok',
    moeLayers: (c) => allLayers(c).filter((i) => i % c.int('expert_layer_period', 2) === c.int('expert_layer_offset', 1)),
  }),
  layouts: {
    original: { module: layer('feed_forward'), tensors: [router('router.weight'), ...perExpertProj] },
    fused: { module: layer('feed_forward'), tensors: [router('router.weight'), ...fusedV5] },
  },
  routing: () => ({ kind: 'softmax_topk', renormalize: false, scaling: 1 }),
  activation: siluGated,
  generator: {
    shared: 'none',
    config: (s) => ({ hidden_size: s.hidden, num_hidden_layers: s.layers, num_experts_per_tok: s.topK, num_experts: s.experts, intermediate_size: s.intermediate, expert_layer_period: 1, expert_layer_offset: 0 }),
  },
  // JambaDecoderLayer: JambaSparseMoeBlock if num_experts > 1 else JambaMLP.
  constraints: { minExperts: 2 },
};
