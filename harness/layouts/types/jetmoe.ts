// jetmoe: no conversion mapping (one layout): mlp.input_linear.weight [E, 2I, H] (gate rows
// first), mlp.output_linear.weight [E, H, I], the router at mlp.router.layer, and mlp.bias [H]
// added to the block's output (canonical layers.L.output_bias). Top-k of the logits, softmax
// over the k. Its attention is a mixture of experts too (JetMoeMoA, self_attention.experts):
// not an MoE MLP block, not part of the canonical tensors.
import type { ModelEntry } from '../model-type.js';
import { part } from '../ops.js';
import { dimsFrom, graniteLinear, layer, mixtralConfig, router, same, siluGated, t } from './common.js';

export const jetmoe: ModelEntry = {
  modelType: 'jetmoe',
  dims: dimsFrom({
    experts: 'num_local_experts',
    intermediate: 'intermediate_size',
    topK: 'num_experts_per_tok',
    features: () => ({ outputBias: true }),
  }),
  layouts: same({ module: layer('mlp'), tensors: [router('router.layer.weight'), ...graniteLinear, t('bias', part('output_bias'))] }),
  routing: () => ({ kind: 'topk_softmax' }),
  activation: siluGated,
  generator: { shared: 'none', config: mixtralConfig },
};
