// dbrx: one layout, flattened w1/v1/w2 [E*I, H]; softmax top-k divided by the p-norm.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import { dbrxFlattened, dimsFrom, router, same, siluGated } from './common.js';

/** DbrxFFNConfig defaults moe_normalize_expert_weights to 1; an explicit null turns normalisation off. */
function pnormOf(c: ModelConfig): number | null {
  const ffn = c.raw['ffn_config'];
  const field = 'moe_normalize_expert_weights';
  if (ffn !== null && typeof ffn === 'object' && field in ffn && (ffn as Record<string, unknown>)[field] === null) return null;
  return c.num(`ffn_config.${field}`, 1);
}

export const dbrx: ModelEntry = {
  modelType: 'dbrx',
  dims: dimsFrom({
    experts: 'ffn_config.moe_num_experts',
    intermediate: 'ffn_config.ffn_hidden_size',
    topK: 'ffn_config.moe_top_k',
    hidden: 'd_model',
  }),
  layouts: same({ module: 'transformer.blocks.{L}.ffn', tensors: [router('router.layer.weight'), ...dbrxFlattened] }),
  // moe_normalize_expert_weights: p of the p-norm the selected weights are divided by; null: not normalised.
  routing: (c) => {
    const p = pnormOf(c);
    return p === null ? { kind: 'softmax_topk', renormalize: false, scaling: 1 } : { kind: 'softmax_topk_pnorm', p };
  },
  activation: siluGated,
  generator: {
    shared: 'none',
    config: (s) => ({ d_model: s.hidden, n_layers: s.layers, ffn_config: { moe_num_experts: s.experts, ffn_hidden_size: s.intermediate, moe_top_k: s.topK } }),
  },
};
