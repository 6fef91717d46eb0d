// gpt_oss: one layout (fused, transposed, gate/up interleaved, with biases); router bias; clamped GLU.
import type { ModelEntry } from '../model-type.js';
import { dimsFrom, fusedInterleavedWithBias, layer, mixtralConfig, router, same, t } from './common.js';
import { part } from '../ops.js';

export const gpt_oss: ModelEntry = {
  modelType: 'gpt_oss',
  dims: dimsFrom({
    experts: 'num_local_experts',
    intermediate: 'intermediate_size',
    topK: 'num_experts_per_tok',
    features: () => ({ routerBias: true, expertBias: true }),
  }),
  layouts: same({ module: layer('mlp'), tensors: [router('router.weight'), t('router.bias', part('router_bias')), ...fusedInterleavedWithBias] }),
  routing: () => ({ kind: 'topk_softmax' }),
  activation: (c) => ({ kind: 'gpt_oss_clamped', alpha: 1.702, limit: c.num('swiglu_limit', 7) }),
  generator: { shared: 'none', config: mixtralConfig },
};
