// cohere2_moe: qwen3_moe's tensors, experts sized by intermediate_size, optional shared experts
// (I × num_shared_experts). Top-k is taken on the raw logits, then softmax over the k or
// σ (renormalised if norm_topk_prob) by expert_selection_fn. With shared experts,
// shared_expert_combination_strategy "average" halves routed and shared outputs
// ((routed + shared) / 2), "sum" adds them. MoE where mlp_layer_types is not "dense".
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import type { Routing } from '../semantics.js';
import { LayoutConfigError } from '../errors.js';
import { allLayers, dimsFrom, fusedV5, layer, layerCount, perExpertProj, range, router, sharedMlp, siluGated, stringList } from './common.js';

const sharedCount = (c: ModelConfig) => c.int('num_shared_experts', 0);
/** 0.5 where routed and shared outputs are averaged, 1 otherwise. */
function combineScale(c: ModelConfig): number {
  if (sharedCount(c) === 0) return 1;
  const how = c.str('shared_expert_combination_strategy', 'average');
  if (how !== 'average' && how !== 'sum') throw new LayoutConfigError('unknown shared_expert_combination_strategy', { file: c.file, expected: 'average|sum', found: how });
  return how === 'average' ? 0.5 : 1;
}

function routing(c: ModelConfig): Routing {
  const fn = c.str('expert_selection_fn', 'softmax');
  const scale = combineScale(c);
  const scaling = scale === 1 ? {} : { scaling: scale };
  if (fn === 'softmax') return { kind: 'topk_softmax', ...scaling };
  if (fn === 'sigmoid') return { kind: 'topk_sigmoid', renormalize: c.bool('norm_topk_prob', true), ...scaling };
  throw new LayoutConfigError('unknown expert_selection_fn', { file: c.file, expected: 'softmax|sigmoid', found: fn });
}

export const cohere2_moe: ModelEntry = {
  modelType: 'cohere2_moe',
  dims: dimsFrom({
    experts: 'num_experts',
    intermediate: 'intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('intermediate_size') * sharedCount(c),
    moeLayers: (c) => {
      const types = stringList(c, 'mlp_layer_types');
      return types ? range(layerCount(c)).filter((i) => types[i] !== 'dense') : allLayers(c);
    },
  }),
  layouts: {
    original: { module: layer('mlp'), tensors: [router('gate.weight'), ...perExpertProj, ...sharedMlp('shared_experts')] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5, ...sharedMlp('shared_experts')] },
  },
  routing,
  activation: siluGated,
  extra: (c) => (combineScale(c) === 1 ? {} : { sharedScale: combineScale(c) }),
  generator: {
    shared: 'multiple_of_I',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      num_experts: s.experts,
      intermediate_size: s.intermediate,
      num_shared_experts: Is / s.intermediate,
      expert_selection_fn: s.experts % 2 === 0 ? 'sigmoid' : 'softmax',
    }),
  },
};
