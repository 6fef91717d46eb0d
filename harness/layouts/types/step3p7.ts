// step3p7: the text decoder of the vision-language model (text_config). Clamped SwiGLU with
// the clamp after the activation, min(silu(g), L) · clamp(u, ±L) (Step3p7Experts, and
// Step3p7MLP for the shared expert), L per layer: swiglu_limits[L] for the routed experts,
// swiglu_limits_shared[L] for the shared one (0 or null: no clamp). Router: sigmoid, choice by
// s + router_bias (a selection-only correction bias), top-k, renormalised; the routed sum ×
// moe_router_scaling_factor; one shared expert (share_expert_dim), plain add. MoE where
// mlp_layer_types says "sparse" (legacy configs: moe_layers_enum; default layers 3..).
// The original checkpoint stores the experts already stacked (moe.gate_proj/up_proj [E, I, H],
// moe.down_proj [E, H, I]) under model.layers, the shared expert beside the block
// (share_expert.*); v5 concatenates gate/up (conversion_mapping "step3p7").
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import type { ExpertActivation } from '../semantics.js';
import { LayoutConfigError } from '../errors.js';
import { part, stackExperts } from '../ops.js';
import { correctionBias, dimsFrom, fusedV5, range, router, sharedMlp, sigmoidBiasRenormalized, siluGated, stringList, t, textDecoderOf } from './common.js';

/** mlp_layer_types (trimmed of legacy MTP entries), else moe_layers_enum, else layers 3.. (Step3p7TextConfig). */
function moeLayers(c: ModelConfig): number[] {
  const n = c.int('num_hidden_layers');
  const types = stringList(c, 'mlp_layer_types');
  if (types !== undefined) {
    if (types.length < n) throw new LayoutConfigError('config field mlp_layer_types must name every decoder layer', { file: c.file, expected: `${n} entries`, found: types.length });
    return range(n).filter((i) => types[i] === 'sparse');
  }
  const legacy = c.raw['moe_layers_enum'];
  if (legacy !== undefined && legacy !== null) {
    const ids = (typeof legacy === 'string' ? legacy.split(',') : (legacy as unknown[])).map((v) => String(v).trim()).filter((v) => v !== '').map(Number);
    return range(n).filter((i) => ids.includes(i));
  }
  return range(n).filter((i) => i >= 3);
}

/** Layer `L`'s limit from a per-layer list; 0, null or no list: no clamp. */
function limitAt(c: ModelConfig, key: string, layer: number): number | undefined {
  const v = c.raw[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => x === null || typeof x === 'number')) {
    throw new LayoutConfigError(`config field ${key} must be a list of numbers`, { file: c.file, expected: 'number list', found: v });
  }
  const limit = v[layer] as number | null | undefined;
  return limit ? limit : undefined;
}
const clampedAfter = (limit: number | undefined): ExpertActivation => (limit === undefined ? { kind: 'silu_gated' } : { kind: 'silu_clamped_after', limit });

const text: ModelEntry = {
  modelType: 'step3p7_text',
  dims: dimsFrom({
    experts: ['n_routed_experts', 'num_local_experts', 'moe_num_experts'],
    intermediate: 'moe_intermediate_size',
    topK: ['num_experts_per_tok', 'moe_top_k'],
    shared: (c) => c.int(['share_expert_dim', 'share_expert_dims']),
    moeLayers,
    features: () => ({ correctionBias: true }),
  }),
  layouts: {
    // The shared expert beside the block, at the decoder layer (`../` keys).
    original: {
      module: 'model.layers.{L}.moe',
      tensors: [
        router('gate.weight'),
        correctionBias('router_bias'),
        t('gate_proj.weight', stackExperts(part('gate'))),
        t('up_proj.weight', stackExperts(part('up'))),
        t('down_proj.weight', stackExperts(part('down'))),
        ...sharedMlp('../share_expert'),
      ],
    },
    fused: { module: 'model.language_model.layers.{L}.mlp', tensors: [router('gate.weight'), correctionBias('gate.e_score_correction_bias'), ...fusedV5, ...sharedMlp('shared_experts')] },
  },
  routing: (c) => sigmoidBiasRenormalized(c.num('moe_router_scaling_factor', 1)),
  activation: siluGated,
  extra: (c, d) => ({
    layerActivations: Object.fromEntries(
      d.moeLayers.map((l) => [l, { activation: clampedAfter(limitAt(c, 'swiglu_limits', l)), sharedActivation: clampedAfter(limitAt(c, 'swiglu_limits_shared', l)) }]),
    ),
  }),
  generator: {
    shared: 'free',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      n_routed_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      share_expert_dim: Is,
      num_experts_per_tok: s.topK,
      mlp_layer_types: range(s.layers).map(() => 'sparse'),
      // Never integral: transformers' strict config refuses an int for a float field.
      moe_router_scaling_factor: 1.25 + (s.experts % 3) / 2,
      // Clamped routed experts on even layers, a clamped shared expert on odd ones.
      swiglu_limits: range(s.layers).map((l) => (l % 2 === 0 ? 0.5 + (s.experts % 3) : 0)),
      swiglu_limits_shared: range(s.layers).map((l) => (l % 2 === 1 ? 0.75 : 0)),
    }),
  },
};

// The original keeps the text decoder under model.layers (v5: model.language_model.layers).
export const step3p7: ModelEntry = { ...textDecoderOf('step3p7', text), layouts: text.layouts };
