// qwen3_omni_moe: the thinker's text decoder (config.json thinker_config.text_config, layers
// under thinker.model.layers): qwen3_moe's block (per-expert gate/up/down_proj in the original,
// the qwen2_moe conversion), no shared expert; softmax top-k, renormalised if norm_topk_prob
// (default true). The talker's own MoE (talker.model.layers) is not the text decoder: its
// tensors sit outside the modules the registry names and are not read.
import type { ModelEntry } from '../model-type.js';
import { softmaxNormTopk, textDecoderOf } from './common.js';
import { qwenPlain } from './qwen3_moe.js';

const text: ModelEntry = { ...qwenPlain('qwen3_omni_moe_text', 'moe_intermediate_size', true), routing: softmaxNormTopk(true) };

export const qwen3_omni_moe = textDecoderOf('qwen3_omni_moe', text, {
  config: ['thinker_config', 'text_config'],
  layers: { original: 'thinker.model.layers.', fused: 'thinker.model.layers.' },
  generatorFields: { enable_audio_output: false },
});
