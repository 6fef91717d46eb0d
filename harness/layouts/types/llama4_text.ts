// llama4_text: one layout (fused, transposed); a shared expert of size I; the routing weight scales the input.
import type { ModelEntry } from '../model-type.js';
import { dimsFrom, fusedTransposed, layer, layerCount, list, range, router, same, sharedMlp, siluGated } from './common.js';

export const llama4_text: ModelEntry = {
  modelType: 'llama4_text',
  dims: dimsFrom({
    experts: 'num_local_experts',
    intermediate: 'intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('intermediate_size'),
    moeLayers: (c) => {
      const step = c.int('interleave_moe_layer_step', 1);
      const explicit = list(c, 'moe_layers');
      const n = layerCount(c);
      return explicit ? [...new Set(explicit)].filter((i) => i >= 0 && i < n).sort((a, b) => a - b) : range(n).filter((i) => step > 0 && i % step === step - 1);
    },
  }),
  layouts: same({ module: layer('feed_forward'), tensors: [router('router.weight'), ...fusedTransposed, ...sharedMlp('shared_expert')] }),
  routing: () => ({ kind: 'topk_sigmoid_input' }),
  activation: siluGated,
  generator: {
    shared: 'equals_I',
    config: (s) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      num_local_experts: s.experts,
      intermediate_size: s.intermediate,
      interleave_moe_layer_step: 1,
      moe_layers: range(s.layers),
    }),
  },
};
