// granitemoeshared: granitemoe's MoE block and the decoder layer's optional shared_mlp beside
// it (shared_intermediate_size, default 0: none), canonically the block's shared expert.
import { graniteBlock } from './granitemoe.js';

export const granitemoeshared = graniteBlock('granitemoeshared', 0);
