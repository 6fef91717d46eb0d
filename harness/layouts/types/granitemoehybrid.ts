// granitemoehybrid: granitemoe's MoE block after mamba2 or attention mixers, and the decoder
// layer's shared_mlp beside it (always built, shared_intermediate_size default 1024),
// canonically the block's shared expert.
import { graniteBlock } from './granitemoe.js';

export const granitemoehybrid = graniteBlock('granitemoehybrid', 1024);
