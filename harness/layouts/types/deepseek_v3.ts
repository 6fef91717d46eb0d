// deepseek_v3 (and glm4_moe, dots1 with other defaults): shared experts, the selection-only
// e_score_correction_bias on the gate, sigmoid group-limited routing (group score = top-2 sum).
import type { ModelEntry } from '../model-type.js';
import { afterFirstDense, correctionBias, deepseekConfig, dimsFrom, fusedV5, layer, perExpertProj, router, sharedMlp, sigmoidGrouped, siluGated } from './common.js';

export interface Dsv3Defaults {
  /** first_k_dense_replace when absent. */
  firstDense: number;
  groups: number;
  topkGroups: number;
  norm: boolean;
  scaling: number;
}

export const dsv3Like = (modelType: string, d: Dsv3Defaults): ModelEntry => ({
  modelType,
  dims: dimsFrom({
    experts: 'n_routed_experts',
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('moe_intermediate_size') * c.int('n_shared_experts', 1),
    moeLayers: afterFirstDense(d.firstDense),
    features: () => ({ correctionBias: true }),
  }),
  layouts: {
    original: {
      module: layer('mlp'),
      tensors: [router('gate.weight'), correctionBias('gate.e_score_correction_bias'), ...perExpertProj, ...sharedMlp('shared_experts')],
    },
    fused: {
      module: layer('mlp'),
      tensors: [router('gate.weight'), correctionBias('gate.e_score_correction_bias'), ...fusedV5, ...sharedMlp('shared_experts')],
    },
  },
  routing: sigmoidGrouped(d),
  activation: siluGated,
  generator: { shared: 'multiple_of_I', grouped: true, config: deepseekConfig },
});

export const deepseek_v3 = dsv3Like('deepseek_v3', { firstDense: 3, groups: 8, topkGroups: 4, norm: true, scaling: 2.5 });
