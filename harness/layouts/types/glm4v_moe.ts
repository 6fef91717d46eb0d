// glm4v_moe: the text decoder of the vision-language model (text_config, layers under
// model.language_model): glm4_moe's MoE block (deepseek_v3's, first_k_dense_replace 1).
import { textDecoderOf } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const glm4v_moe = textDecoderOf('glm4v_moe', dsv3Like('glm4v_moe_text', { firstDense: 1, groups: 1, topkGroups: 1, norm: true, scaling: 1 }));
