// qwen3_vl_moe: the text decoder of the vision-language model, whose sizes sit in
// config.json's text_config and whose layers sit under model.language_model. Its published
// checkpoints store the experts transposed, gate_up_proj [E, H, 2I] and down_proj [E, I, H]
// (the llama4 family, spec/layouts.md §1 D); v5 holds [E, 2I, H] / [E, H, I]. transformers
// 5.17 converts with Transpose(1, 2, check_dims=True): it transposes only when the shapes
// differ, so with 2I == H (gate_up) or I == H (down) it reads a transposed checkpoint
// untransposed, and its own save writes the v5 orientation under either name.
import type { ModelEntry } from '../model-type.js';
import { dimsFrom, fusedTransposed, fusedV5, layer, qwenSparseLayers, renormalizedSoftmax, router, siluGated, textDecoderOf } from './common.js';

const text: ModelEntry = {
  modelType: 'qwen3_vl_moe_text',
  dims: dimsFrom({
    experts: ['num_experts', 'num_local_experts'],
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    moeLayers: qwenSparseLayers,
  }),
  layouts: {
    original: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedTransposed] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5] },
  },
  // Qwen3VLMoeTextTopKRouter always renormalises.
  routing: renormalizedSoftmax,
  activation: siluGated,
  generator: {
    shared: 'none',
    config: (s) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      num_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      decoder_sparse_step: 1,
      mlp_only_layers: [],
    }),
  },
};

export const qwen3_vl_moe = textDecoderOf('qwen3_vl_moe', text);
