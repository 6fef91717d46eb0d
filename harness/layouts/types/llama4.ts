// llama4: the text decoder of Llama4ForConditionalGeneration (config.json text_config), whose
// layers sit under language_model.model.layers (the model holds a Llama4ForCausalLM): the
// llama4_text block (fused, transposed experts, shared expert, routing weight on the input),
// one layout, as transformers 5.17 has no conversion for it.
import { textDecoderOf } from './common.js';
import { llama4_text } from './llama4_text.js';

export const llama4 = textDecoderOf('llama4', llama4_text, { layers: { original: 'language_model.model.layers.', fused: 'language_model.model.layers.' } });
