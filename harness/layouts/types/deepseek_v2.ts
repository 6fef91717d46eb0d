// deepseek_v2: per-expert gate/up/down_proj and shared_experts; softmax, greedy or group-limited (group max).
import type { ModelEntry } from '../model-type.js';
import { afterFirstDense, deepseekConfig, dimsFrom, fusedV5, layer, perExpertProj, router, sharedMlp, siluGated } from './common.js';

export const deepseek_v2: ModelEntry = {
  modelType: 'deepseek_v2',
  dims: dimsFrom({
    experts: 'n_routed_experts',
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('moe_intermediate_size') * c.int('n_shared_experts', 0),
    moeLayers: afterFirstDense(0),
  }),
  layouts: {
    original: { module: layer('mlp'), tensors: [router('gate.weight'), ...perExpertProj, ...sharedMlp('shared_experts')] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5, ...sharedMlp('shared_experts')] },
  },
  // topk_method "greedy" (the default) is the group-limited rule with one group kept whole.
  routing: (c) => {
    const grouped = c.str('topk_method', 'greedy') === 'group_limited_greedy';
    return {
      kind: 'softmax_group_limited',
      groups: grouped ? c.int('n_group') : 1,
      topkGroups: grouped ? c.int('topk_group') : 1,
      scaling: c.num('routed_scaling_factor', 1),
    };
  },
  activation: siluGated,
  generator: {
    shared: 'multiple_of_I',
    grouped: true,
    config: (s, Is) => ({ ...deepseekConfig(s, Is), topk_method: s.groups > 1 ? 'group_limited_greedy' : 'greedy' }),
  },
  // DeepseekV2Moe builds shared_experts of moe_intermediate_size * n_shared_experts unconditionally.
  constraints: { sharedRequired: true },
};
