// granitemoe (and granitemoeshared, granitemoehybrid, whose MoE block is granitemoe's): original
// input_linear/output_linear [E, 2I, H]/[E, H, I] with router.layer, renamed in v5; top-k of
// the logits, softmax over the k. granitemoeshared/-hybrid add a shared_mlp in the decoder
// layer, beside the MoE block and fed the same input, its output added to the block's
// (GraniteMoeSharedDecoderLayer: moe(x) + shared_mlp(x)): canonically the block's shared
// expert (shared.w13 = input_linear [2Is, H], gate half first; shared.w2 = output_linear),
// stored under the same names in both layouts.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry, TensorSpec } from '../model-type.js';
import { concat, part } from '../ops.js';
import { dimsFrom, fusedV5, graniteLinear, layer, mixtralConfig, mixtralDims, router, shared, siluGated, t } from './common.js';

/** The decoder layer's shared_mlp, beside the block (`../`), where the type has one. */
const sharedMlp: TensorSpec[] = [
  t('../shared_mlp.input_linear.weight', concat(0, part('shared_gate_proj'), part('shared_up_proj')), shared),
  t('../shared_mlp.output_linear.weight', part('shared_down_proj'), shared),
];

/** `sharedDefault`: shared_intermediate_size when absent (granitemoeshared 0: no shared_mlp; granitemoehybrid 1024); null: none. */
export const graniteBlock = (modelType: string, sharedDefault: number | null = null): ModelEntry => {
  const withShared = sharedDefault !== null;
  const extra = withShared ? sharedMlp : [];
  return {
    modelType,
    dims: withShared
      ? dimsFrom({ experts: 'num_local_experts', intermediate: 'intermediate_size', topK: 'num_experts_per_tok', shared: (c: ModelConfig) => c.int('shared_intermediate_size', sharedDefault) })
      : mixtralDims,
    layouts: {
      original: { module: layer('block_sparse_moe'), tensors: [router('router.layer.weight'), ...graniteLinear, ...extra] },
      fused: { module: layer('block_sparse_moe'), tensors: [router('router.weight'), ...fusedV5, ...extra] },
    },
    routing: () => ({ kind: 'topk_softmax' }),
    activation: siluGated,
    generator: { shared: withShared ? 'free' : 'none', config: (s, Is) => ({ ...mixtralConfig(s), ...(withShared ? { shared_intermediate_size: Is } : {}) }) },
  };
};

export const granitemoe = graniteBlock('granitemoe');
