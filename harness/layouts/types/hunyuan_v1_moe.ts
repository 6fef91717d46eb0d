// hunyuan_v1_moe: router gate.wg; the shared MLP sized like the routed experts (intermediate_size).
import type { ModelEntry } from '../model-type.js';
import { dimsFrom, fusedV5, layer, perExpertProj, renormalizedSoftmax, router, sharedMlp, siluGated } from './common.js';

export const hunyuan_v1_moe: ModelEntry = {
  modelType: 'hunyuan_v1_moe',
  // HunYuanMoEV1MLP sizes routed and shared experts alike from intermediate_size.
  dims: dimsFrom({
    experts: 'num_experts',
    intermediate: 'intermediate_size',
    topK: 'moe_topk',
    shared: (c) => c.int('intermediate_size'),
  }),
  layouts: {
    original: { module: layer('mlp'), tensors: [router('gate.wg.weight'), ...perExpertProj, ...sharedMlp('shared_mlp')] },
    fused: { module: layer('mlp'), tensors: [router('gate.wg.weight'), ...fusedV5, ...sharedMlp('shared_mlp')] },
  },
  routing: renormalizedSoftmax,
  activation: siluGated,
  generator: {
    shared: 'equals_I',
    config: (s) => ({ hidden_size: s.hidden, num_hidden_layers: s.layers, num_experts: s.experts, intermediate_size: s.intermediate, moe_topk: s.topK }),
  },
};
