// hy_v3: the original keeps the router at router.gate, the selection bias as expert_bias and
// the shared MLP as shared_mlp; v5 renames them to gate, e_score_correction_bias and
// shared_experts. Sigmoid + bias, renormalised (+1e-20), × router_scaling_factor. MoE where
// mlp_layer_types says "sparse" (default: the first layer dense). The shared MLP is
// I × num_shared_experts (intermediate_size when that product is 0: not generated).
import type { LayoutName, ModelEntry, ModuleLayout, TensorSpec } from '../model-type.js';
import { allLayers, allSparse, correctionBias, dimsFrom, fusedV5, layer, layersOfType, perExpertProj, router, sharedMlp, sigmoidBiasRenormalized, siluGated } from './common.js';

const NAMES: Record<LayoutName, { router: string; bias: string; shared: string }> = {
  original: { router: 'router.gate.weight', bias: 'expert_bias', shared: 'shared_mlp' },
  fused: { router: 'gate.weight', bias: 'e_score_correction_bias', shared: 'shared_experts' },
};
const block = (l: LayoutName, experts: TensorSpec[]): ModuleLayout => ({
  module: layer('mlp'),
  tensors: [router(NAMES[l].router), correctionBias(NAMES[l].bias), ...experts, ...sharedMlp(NAMES[l].shared)],
});

export const hy_v3: ModelEntry = {
  modelType: 'hy_v3',
  dims: dimsFrom({
    experts: ['num_experts', 'num_local_experts'],
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('moe_intermediate_size') * c.int('num_shared_experts', 1) || c.int('intermediate_size'),
    moeLayers: layersOfType('mlp_layer_types', 'sparse', (c) => allLayers(c).slice(1)),
    // HYV3PreTrainedModel: _keep_in_fp32_modules_strict = ["e_score_correction_bias"].
    features: () => ({ correctionBias: true, correctionBiasF32: true }),
  }),
  layouts: { original: block('original', perExpertProj), fused: block('fused', fusedV5) },
  routing: (c) => sigmoidBiasRenormalized(c.num('router_scaling_factor', 2.826)),
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
      ...allSparse(s),
    }),
  },
};
