// flex_olmo: olmoe's MoE block.
import { qwenPlain } from './qwen3_moe.js';

export const flex_olmo = qwenPlain('flex_olmo', 'intermediate_size', false);
