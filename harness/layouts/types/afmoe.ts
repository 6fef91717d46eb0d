// afmoe: router at router.gate, a block-level expert_bias for selection, shared experts
// (I × num_shared_experts, always built), MoE after num_dense_layers; sigmoid + bias,
// renormalised (+1e-20), × route_scale (AfmoeTokenChoiceRouter).
import type { ModelEntry, ModuleLayout } from '../model-type.js';
import { allLayers, correctionBias, dimsFrom, fusedV5, layer, perExpertProj, router, sharedMlp, sigmoidBiasRenormalized, siluGated } from './common.js';
import type { TensorSpec } from '../model-type.js';

const block = (experts: TensorSpec[]): ModuleLayout => ({
  module: layer('mlp'),
  tensors: [router('router.gate.weight'), correctionBias('expert_bias'), ...experts, ...sharedMlp('shared_experts')],
});

export const afmoe: ModelEntry = {
  modelType: 'afmoe',
  dims: dimsFrom({
    experts: 'num_experts',
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('moe_intermediate_size') * c.int('num_shared_experts', 2),
    moeLayers: (c) => allLayers(c).filter((i) => i >= c.int('num_dense_layers', 1)),
    // AfmoeSparseMoeBlock builds the shared MLP whatever its size.
    features: () => ({ correctionBias: true, sharedExpert: true }),
  }),
  layouts: { original: block(perExpertProj), fused: block(fusedV5) },
  routing: (c) => sigmoidBiasRenormalized(c.num('route_scale', 1)),
  activation: siluGated,
  generator: {
    shared: 'positive_multiple_of_I',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      num_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      num_shared_experts: Is / s.intermediate,
      num_dense_layers: 0,
    }),
  },
};
