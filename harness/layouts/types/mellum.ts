// mellum: qwen3_moe's tensors; softmax top-k, renormalised if norm_topk_prob; MoE where
// mlp_layer_types says "sparse".
import type { ModelEntry } from '../model-type.js';
import { allLayers, allSparse, dimsFrom, fusedV5, layer, layersOfType, perExpertProj, router, siluGated, softmaxNormTopk } from './common.js';

export const mellum: ModelEntry = {
  modelType: 'mellum',
  dims: dimsFrom({
    experts: ['num_local_experts', 'num_experts'],
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    moeLayers: layersOfType('mlp_layer_types', 'sparse', allLayers),
  }),
  layouts: {
    original: { module: layer('mlp'), tensors: [router('gate.weight'), ...perExpertProj] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5] },
  },
  routing: softmaxNormTopk(true),
  activation: siluGated,
  generator: {
    shared: 'none',
    config: (s) => ({ hidden_size: s.hidden, num_hidden_layers: s.layers, num_experts_per_tok: s.topK, num_local_experts: s.experts, moe_intermediate_size: s.intermediate, ...allSparse(s) }),
  },
};
