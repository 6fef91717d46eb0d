// openai_privacy_filter: a bidirectional token classifier (OpenAIPrivacyFilterForTokenClassification,
// not a decoder) whose layers hold gpt_oss's MoE block with one difference of layout: the
// transposed gate_up_proj [E, H, 2I] concatenates gate and up (chunk(2), gate first) instead
// of interleaving them, with gate_up_proj_bias [E, 2I] likewise, down_proj [E, I, H] and
// down_proj_bias [E, H]; router weight and bias. The clamped GLU has fixed α 1.702 and limit 7
// (not read from the config). Routing: top-k of the logits, softmax over the k, divided by k;
// the block multiplies its output by k again, so the weights are topk_softmax's. One layout
// (no conversion mapping); every layer is an MoE layer. Engines that serve it load this block.
import type { ModelEntry } from '../model-type.js';
import { concat, part, stackExperts, transposeLast } from '../ops.js';
import { dimsFrom, layer, mixtralConfig, router, same, t } from './common.js';

export const openai_privacy_filter: ModelEntry = {
  modelType: 'openai_privacy_filter',
  dims: dimsFrom({
    experts: 'num_local_experts',
    intermediate: 'intermediate_size',
    topK: 'num_experts_per_tok',
    features: () => ({ routerBias: true, expertBias: true }),
  }),
  layouts: same({
    module: layer('mlp'),
    tensors: [
      router('router.weight'),
      t('router.bias', part('router_bias')),
      t('experts.gate_up_proj', stackExperts(transposeLast(concat(0, part('gate'), part('up'))))),
      t('experts.gate_up_proj_bias', stackExperts(concat(0, part('gate_bias'), part('up_bias')))),
      t('experts.down_proj', stackExperts(transposeLast(part('down')))),
      t('experts.down_proj_bias', stackExperts(part('down_bias'))),
    ],
  }),
  routing: () => ({ kind: 'topk_softmax' }),
  activation: () => ({ kind: 'gpt_oss_clamped', alpha: 1.702, limit: 7 }),
  generator: { shared: 'none', config: mixtralConfig },
};
