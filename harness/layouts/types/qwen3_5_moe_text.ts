// qwen3_5_moe_text (the text decoder of qwen3_5_moe; a text-only checkpoint saves it under
// model.layers): qwen3_next's MoE block (shared expert with a sigmoid gate) in every layer,
// after Gated DeltaNet or full attention. Qwen3_5MoeTopKRouter always renormalises.
import { allLayers, renormalizedSoftmax } from './common.js';
import { qwenSharedGated } from './qwen2_moe.js';

export const qwen3_5_moe_text = qwenSharedGated('qwen3_5_moe_text', true, { routing: renormalizedSoftmax, moeLayers: allLayers });
