// granitemoehybrid: granitemoe's MoE block after mamba2 or attention mixers; the decoder
// layer's shared_mlp sits outside it.
import { graniteBlock } from './granitemoe.js';

export const granitemoehybrid = graniteBlock('granitemoehybrid');
