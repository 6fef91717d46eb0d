// granitemoeshared: granitemoe's MoE block; the decoder layer's shared_mlp sits outside it.
import { graniteBlock } from './granitemoe.js';

export const granitemoeshared = graniteBlock('granitemoeshared');
