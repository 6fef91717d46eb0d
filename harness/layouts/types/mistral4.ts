// mistral4: no conversion mapping, so the checkpoint is v5's fused form (one layout); shared
// experts I × n_shared_experts, plain add; MoE from first_k_dense_replace. Routing is the
// group-limited top-2-sum rule on softmax scores, without a correction bias (Mistral4TopkRouter).
import type { ModelEntry } from '../model-type.js';
import { afterFirstDense, dimsFrom, fusedV5, layer, router, same, sharedMlp, siluGated } from './common.js';

export const mistral4: ModelEntry = {
  modelType: 'mistral4',
  dims: dimsFrom({
    experts: ['n_routed_experts', 'num_local_experts'],
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('moe_intermediate_size') * c.int('n_shared_experts', 1),
    moeLayers: afterFirstDense(0),
  }),
  layouts: same({ module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5, ...sharedMlp('shared_experts')] }),
  routing: (c) => ({
    kind: 'softmax_group_top2',
    groups: c.int('n_group', 1),
    topkGroups: c.int('topk_group', 1),
    renormalize: c.bool('norm_topk_prob', true),
    scaling: c.num('routed_scaling_factor', 1),
  }),
  activation: siluGated,
  generator: {
    shared: 'multiple_of_I',
    grouped: true,
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      n_routed_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      n_shared_experts: Is / s.intermediate,
      first_k_dense_replace: 0,
      n_group: s.groups,
      topk_group: s.topkGroups,
    }),
  },
};
