// qwen3_moe, olmoe, flex_olmo: per-expert gate/up/down_proj under mlp, softmax top-k, no shared expert.
import type { ModelEntry } from '../model-type.js';
import { dimsFrom, fusedV5, layer, perExpertProj, qwenSparseLayers, router, siluGated, softmaxNormTopk } from './common.js';

export const qwenPlain = (modelType: string, intermediate: 'moe_intermediate_size' | 'intermediate_size', sparseStep: boolean): ModelEntry => ({
  modelType,
  dims: dimsFrom({
    // transformers 5 saves qwen3_moe's count as num_local_experts.
    experts: ['num_experts', 'num_local_experts'],
    intermediate,
    topK: 'num_experts_per_tok',
    ...(sparseStep ? { moeLayers: qwenSparseLayers } : {}),
  }),
  layouts: {
    original: { module: layer('mlp'), tensors: [router('gate.weight'), ...perExpertProj] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5] },
  },
  routing: softmaxNormTopk(false),
  activation: siluGated,
  generator: {
    shared: 'none',
    config: (s) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      num_experts: s.experts,
      [intermediate]: s.intermediate,
      ...(sparseStep ? { decoder_sparse_step: 1, mlp_only_layers: [] } : {}),
    }),
  },
});

export const qwen3_moe = qwenPlain('qwen3_moe', 'moe_intermediate_size', true);
