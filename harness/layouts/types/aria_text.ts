// aria_text (and aria, its vision-language model): experts.fc1.weight [E, H, 2I] (transposed,
// x · fc1 gives [first I | second I]) and fc2.weight [E, I, H]; the first half goes through
// SiLU and multiplies the second (chunk order: the first half is the gate), so fc1 is v5's
// gate_up_proj transposed (spec/layouts.md §1 D) under other names. Top-k of the router
// logits, softmax over the k; shared experts intermediate_size × moe_num_shared_experts
// (default 2, built whatever the count), plain add. No conversion of the experts: one layout
// (aria's llava mapping only moves the VL model's prefixes).
import type { ModelEntry } from '../model-type.js';
import { concat, part, stackExperts, transposeLast } from '../ops.js';
import { dimsFrom, layer, router, same, sharedMlp, siluGated, t, textDecoderOf } from './common.js';

export const aria_text: ModelEntry = {
  modelType: 'aria_text',
  dims: dimsFrom({
    experts: 'moe_num_experts',
    intermediate: 'intermediate_size',
    topK: 'moe_topk',
    shared: (c) => c.int('intermediate_size') * c.int('moe_num_shared_experts', 2),
  }),
  layouts: same({
    module: layer('mlp'),
    tensors: [
      router('router.weight'),
      t('experts.fc1.weight', stackExperts(transposeLast(concat(0, part('gate'), part('up'))))),
      t('experts.fc2.weight', stackExperts(transposeLast(part('down')))),
      ...sharedMlp('shared_experts'),
    ],
  }),
  routing: () => ({ kind: 'topk_softmax' }),
  activation: siluGated,
  generator: {
    // Never 0 (transformers always builds aria's shared MLP): the rule itself, no sharedRequired constraint.
    shared: 'positive_multiple_of_I',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      moe_num_experts: s.experts,
      moe_topk: s.topK,
      intermediate_size: s.intermediate,
      moe_num_shared_experts: Is / s.intermediate,
    }),
  },
};

// transformers 5.17's llava mapping saves the original with language_model.model.layers.
export const aria = textDecoderOf('aria', aria_text, { layers: { original: 'language_model.model.layers.', fused: 'model.language_model.layers.' } });
