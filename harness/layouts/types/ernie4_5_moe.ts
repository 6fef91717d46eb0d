// ernie4_5_moe: moe_statics correction bias [1, E]; softmax, selection by p + bias, weights / max(sum, moe_norm_min).
import type { ModelEntry } from '../model-type.js';
import { correctionBias, dimsFrom, fusedV5, layer, layerCount, perExpertProj, range, router, sharedMlp, siluGated } from './common.js';
import { part, unsqueezeLeading } from '../ops.js';

export const ernie4_5_moe: ModelEntry = {
  modelType: 'ernie4_5_moe',
  dims: dimsFrom({
    experts: 'moe_num_experts',
    intermediate: 'moe_intermediate_size',
    topK: 'moe_k',
    shared: (c) => c.int('moe_intermediate_size') * c.int('moe_num_shared_experts', 0),
    moeLayers: (c) => {
      const n = layerCount(c);
      const start = c.int('moe_layer_start_index', 1);
      const endField = c.int('moe_layer_end_index', -1);
      const end = endField < 0 ? n - 1 : endField;
      const interval = c.int('moe_layer_interval', 1);
      return range(n).filter((i) => interval > 0 && (i + 1) % interval === 0 && i >= start && i <= end);
    },
    features: () => ({ correctionBias: true }),
  }),
  layouts: {
    original: {
      module: layer('mlp'),
      tensors: [
        router('gate.weight'),
        correctionBias('moe_statics.e_score_correction_bias', unsqueezeLeading(part('correction_bias'))),
        ...perExpertProj,
        ...sharedMlp('shared_experts'),
      ],
    },
    fused: {
      module: layer('mlp'),
      tensors: [
        router('gate.weight'),
        correctionBias('gate.moe_statics.e_score_correction_bias', unsqueezeLeading(part('correction_bias'))),
        ...fusedV5,
        ...sharedMlp('shared_experts'),
      ],
    },
  },
  routing: (c) => ({ kind: 'softmax_bias_normmin', normMin: c.num('moe_norm_min', 1e-12) }),
  activation: siluGated,
  generator: {
    shared: 'multiple_of_I',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      moe_num_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      moe_k: s.topK,
      moe_num_shared_experts: Is / s.intermediate,
      moe_layer_start_index: 0,
      moe_layer_interval: 1,
    }),
  },
};
