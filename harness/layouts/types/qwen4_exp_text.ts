// qwen4_exp_text: qwen3_5_moe_text's MoE block (shared expert with a sigmoid gate) in every
// layer, between hyper-connections; the conversion is qwen3_5_moe_text's (per-expert
// gate/up/down_proj in the original) plus n-gram embedding shards outside the block. Softmax
// top-k, renormalised if norm_topk_prob (default true). Qwen4ExpTextConfig refuses a shared
// expert of size 0.
import { allLayers, softmaxNormTopk, textDecoderOf } from './common.js';
import { qwenSharedGated } from './qwen2_moe.js';
import type { ModelEntry } from '../model-type.js';

const base = qwenSharedGated('qwen4_exp_text', true, { routing: softmaxNormTopk(true), moeLayers: allLayers });
export const qwen4_exp_text: ModelEntry = { ...base, generator: { ...base.generator, shared: 'positive_multiple_of_I' as const } };

// qwen4_exp: the vision-language model, its text decoder (text_config) under
// model.language_model.layers in both layouts (qwen3_5_text's PrefixChange keeps it there).
export const qwen4_exp = textDecoderOf('qwen4_exp', qwen4_exp_text);
