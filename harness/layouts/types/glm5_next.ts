// glm5_next: the text decoder of the vision-language model (text_config, layers under
// model.language_model). deepseek_v3's MoE block with clamped SwiGLU in the routed and the
// shared experts, silu(min(g, swiglu_limit)) · clamp(u, ±swiglu_limit) (Glm5NextTextExperts,
// Glm5NextTextMLP), and dropped groups scoring -inf (Glm5NextTextTopkRouter). MoE where
// mlp_layer_types says "sparse" (default: the first three layers dense).
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import type { ExpertActivation } from '../semantics.js';
import { allSparse, layersOfType, range, textDecoderOf } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

const clamped = (c: ModelConfig): ExpertActivation => ({ kind: 'silu_clamped', limit: c.num('swiglu_limit', 10) });
const base = dsv3Like('glm5_next_text', {
  firstDense: 3, groups: 1, topkGroups: 1, norm: true, scaling: 2.5,
  moeLayers: layersOfType('mlp_layer_types', 'sparse', (c) => range(c.int('num_hidden_layers')).filter((i) => i >= 3)),
  generatorConfig: (s) => ({ ...allSparse(s), layer_types: Array.from({ length: s.layers }, () => 'deepseek_sparse_attention'), swiglu_limit: 0.5 + (s.experts % 3) }),
});
const text: ModelEntry = {
  ...base,
  routing: (c) => ({ ...(base.routing(c) as Extract<ReturnType<ModelEntry['routing']>, { kind: 'sigmoid_group_limited_bias' }>), maskNegInf: true }),
  activation: clamped,
  extra: (c) => ({ sharedActivation: clamped(c) }),
};

export const glm5_next = textDecoderOf('glm5_next', text);
