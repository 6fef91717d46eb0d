// qwen2_moe and qwen3_next: per-expert gate/up/down_proj, a shared expert with a sigmoid gate.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import { dimsFrom, fusedV5, layer, perExpertProj, qwenSparseLayers, router, shared, sharedMlp, siluGated, softmaxNormTopk, t } from './common.js';
import { part } from '../ops.js';

export const qwenSharedGated = (
  modelType: string, normDefault: boolean,
  o: { routing?: ModelEntry['routing']; moeLayers?: (c: ModelConfig) => number[] } = {},
): ModelEntry => ({
  modelType,
  dims: dimsFrom({
    experts: 'num_experts',
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('shared_expert_intermediate_size'),
    moeLayers: o.moeLayers ?? qwenSparseLayers,
    // transformers builds the shared expert and its gate whatever the size (zero-size weights for Is = 0).
    features: () => ({ sharedExpert: true, sharedGate: true }),
  }),
  layouts: {
    original: {
      module: layer('mlp'),
      tensors: [router('gate.weight'), ...perExpertProj, ...sharedMlp('shared_expert'), t('shared_expert_gate.weight', part('shared_gate'), shared)],
    },
    fused: {
      module: layer('mlp'),
      tensors: [router('gate.weight'), ...fusedV5, ...sharedMlp('shared_expert'), t('shared_expert_gate.weight', part('shared_gate'), shared)],
    },
  },
  routing: o.routing ?? softmaxNormTopk(normDefault),
  activation: siluGated,
  generator: {
    shared: 'free',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      num_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      shared_expert_intermediate_size: Is,
      decoder_sparse_step: 1,
      mlp_only_layers: [],
    }),
  },
});

// Qwen2MoeConfig defaults norm_topk_prob to False.
export const qwen2_moe = qwenSharedGated('qwen2_moe', false);
