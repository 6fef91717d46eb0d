// deepseek_ocr2: the text decoder of the OCR model (text_config). deepseek_v2's block: per-expert
// gate/up/down_proj in the original, shared experts I × n_shared_experts (default 2, built
// whatever the count), softmax routing, greedy or group-limited greedy (group score = max),
// never renormalised, × routed_scaling_factor (default 1). MoE where mlp_layer_types says
// "sparse": transformers requires the list. transformers' conversion renames the original's
// model.layers to model.language_model.layers.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { deepseek_v2 } from './deepseek_v2.js';
import { allSparse, dimsFrom, layersOfType, textDecoderOf } from './common.js';

const needsList = (c: ModelConfig): number[] => {
  throw new LayoutConfigError('deepseek_ocr2 needs mlp_layer_types (transformers builds no decoder without it)', { file: c.file, expected: 'text_config.mlp_layer_types', found: 'nothing' });
};

// deepseek_v2's block, routing and config names; its own defaults and MoE-layer rule.
const text: ModelEntry = {
  ...deepseek_v2,
  modelType: 'deepseek_ocr2_text',
  dims: dimsFrom({
    experts: ['n_routed_experts', 'num_experts'],
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('moe_intermediate_size') * c.int('n_shared_experts', 2),
    moeLayers: layersOfType('mlp_layer_types', 'sparse', needsList),
  }),
  generator: { ...deepseek_v2.generator, config: (s, Is) => ({ ...deepseek_v2.generator.config(s, Is), ...allSparse(s) }) },
};

export const deepseek_ocr2 = textDecoderOf('deepseek_ocr2', text, { layers: { original: 'model.layers.', fused: 'model.language_model.layers.' } });
