// granitemoe_swa: granitemoe's MoE block (top-k of the logits, softmax over the k) under
// sliding-window attention. transformers 5.17 has no conversion mapping for it (granitemoe's
// renames are not inherited): its checkpoints hold the v5 names, one layout. The optional
// shared_mlp (shared_intermediate_size, 0 by default) sits in the decoder layer beside the block,
// added to its output: canonically the block's shared expert, as for granitemoeshared.
import type { ModelEntry } from '../model-type.js';
import { graniteBlock } from './granitemoe.js';
import { same } from './common.js';

const base = graniteBlock('granitemoe_swa', 0);
export const granitemoe_swa: ModelEntry = { ...base, layouts: same(base.layouts.fused) };
