// deepseek_ocr2: the text decoder of the OCR model (text_config). deepseek_v2's block: per-expert
// gate/up/down_proj in the original, shared experts I × n_shared_experts (default 2, built
// whatever the count), softmax routing, greedy or group-limited greedy (group score = max),
// never renormalised, × routed_scaling_factor (default 1). MoE where mlp_layer_types says
// "sparse": transformers requires the list. transformers' conversion renames the original's
// model.layers to model.language_model.layers.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { allSparse, dimsFrom, fusedV5, layer, layersOfType, perExpertProj, router, sharedMlp, siluGated, textDecoderOf } from './common.js';

const needsList = (c: ModelConfig): number[] => {
  throw new LayoutConfigError('deepseek_ocr2 needs mlp_layer_types (transformers builds no decoder without it)', { file: c.file, expected: 'text_config.mlp_layer_types', found: 'nothing' });
};

const text: ModelEntry = {
  modelType: 'deepseek_ocr2_text',
  dims: dimsFrom({
    experts: ['n_routed_experts', 'num_experts'],
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('moe_intermediate_size') * c.int('n_shared_experts', 2),
    moeLayers: layersOfType('mlp_layer_types', 'sparse', needsList),
  }),
  layouts: {
    original: { module: layer('mlp'), tensors: [router('gate.weight'), ...perExpertProj, ...sharedMlp('shared_experts')] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5, ...sharedMlp('shared_experts')] },
  },
  routing: (c) => {
    const grouped = c.str('topk_method', 'greedy') === 'group_limited_greedy';
    return { kind: 'softmax_group_limited', groups: grouped ? c.int('n_group') : 1, topkGroups: grouped ? c.int('topk_group') : 1, scaling: c.num('routed_scaling_factor', 1) };
  },
  activation: siluGated,
  generator: {
    shared: 'positive_multiple_of_I',
    grouped: true,
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      n_routed_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      n_shared_experts: Is / s.intermediate,
      topk_method: s.groups > 1 ? 'group_limited_greedy' : 'greedy',
      n_group: s.groups,
      topk_group: s.topkGroups,
      ...allSparse(s),
    }),
  },
  constraints: { sharedRequired: true },
};

export const deepseek_ocr2 = textDecoderOf('deepseek_ocr2', text, { layers: { original: 'model.layers.', fused: 'model.language_model.layers.' } });
