// olmoe: qwen3_moe's tensors, sizes under intermediate_size, every layer MoE.
import { qwenPlain } from './qwen3_moe.js';

export const olmoe = qwenPlain('olmoe', 'intermediate_size', false);
