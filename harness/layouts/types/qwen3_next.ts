// qwen3_next: qwen2_moe's MoE block; Qwen3NextConfig defaults norm_topk_prob to True.
import { qwenSharedGated } from './qwen2_moe.js';

export const qwen3_next = qwenSharedGated('qwen3_next', true);
