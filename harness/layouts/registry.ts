// One description per model type, as data: which decoder layers hold an MoE block, the
// config.json fields that give its sizes, and the tensors of its MoE module in the
// architecture's historical ("original") layout and in the transformers v5 ("fused")
// layout, each as a tree of the reversible operations of ops.ts. The loader reads these
// trees forward and the writer backward; nothing else knows a key name.
// Sources: spec/layouts.md, transformers 5.17 modeling_*.py, configuration_*.py
// and conversion_mapping.py, and the golden fixtures' headers.
import type { ModelConfig } from '../checkpoint/config.js';
import type { ExpertActivation, MoeSemantics, Routing } from './semantics.js';
import { LayoutConfigError, UnknownModelType } from './errors.js';
import {
  concat,
  flattenLeading,
  interleave,
  part,
  stackExperts,
  transposeLast,
  unsqueezeLeading,
  type Op,
  type PartSizes,
} from './ops.js';

export type LayoutName = 'original' | 'fused';
export const LAYOUT_NAMES: readonly LayoutName[] = ['original', 'fused'];

/** Which optional tensors a model's MoE block has. */
export interface Features {
  sharedExpert: boolean;
  sharedGate: boolean;
  routerBias: boolean;
  correctionBias: boolean;
  expertBias: boolean;
}

export interface MoeDims extends PartSizes {
  topK: number;
  /** Decoder layers in the checkpoint (`num_hidden_layers`). */
  layers: number;
  /** Decoder layer indices that hold an MoE block, ascending. */
  moeLayers: number[];
  features: Features;
}

/** One stored tensor: its key relative to the module (`{e}` stands for the expert id) and how it is composed. */
export interface TensorSpec {
  key: string;
  op: Op;
  when?: (f: Features) => boolean;
}

/** The MoE module of one layer in one layout: its key prefix (`{L}` is the layer) and its tensors. */
export interface ModuleLayout {
  module: string;
  tensors: TensorSpec[];
}

export interface ModelEntry {
  modelType: string;
  dims(c: ModelConfig): MoeDims;
  layouts: Record<LayoutName, ModuleLayout>;
  routing(c: ModelConfig): Routing;
  activation(c: ModelConfig): ExpertActivation;
}

// ---- tensors, by layout family (spec/layouts.md §1) ----

const t = (key: string, op: Op, when?: (f: Features) => boolean): TensorSpec => ({ key, op, ...(when ? { when } : {}) });
const shared = (f: Features) => f.sharedExpert;

/** A. per expert, w1 gate / w3 up / w2 down. */
const perExpertW = [
  t('experts.{e}.w1.weight', part('gate')),
  t('experts.{e}.w3.weight', part('up')),
  t('experts.{e}.w2.weight', part('down')),
];
/** B. per expert, gate_proj / up_proj / down_proj. */
const perExpertProj = [
  t('experts.{e}.gate_proj.weight', part('gate')),
  t('experts.{e}.up_proj.weight', part('up')),
  t('experts.{e}.down_proj.weight', part('down')),
];
/** C. fused v5: gate_up_proj [E, 2I, H] gate rows first, down_proj [E, H, I]. */
const fusedV5 = [
  t('experts.gate_up_proj', stackExperts(concat(0, part('gate'), part('up')))),
  t('experts.down_proj', stackExperts(part('down'))),
];
/** D. fused, transposed, concatenated: gate_up_proj [E, H, 2I], down_proj [E, I, H] (llama4). */
const fusedTransposed = [
  t('experts.gate_up_proj', stackExperts(transposeLast(concat(0, part('gate'), part('up'))))),
  t('experts.down_proj', stackExperts(transposeLast(part('down')))),
];
/** E. fused, transposed, interleaved gate/up, with biases (gpt_oss). */
const fusedInterleavedWithBias = [
  t('experts.gate_up_proj', stackExperts(transposeLast(interleave(0, part('gate'), part('up'))))),
  t('experts.gate_up_proj_bias', stackExperts(interleave(0, part('gate_bias'), part('up_bias')))),
  t('experts.down_proj', stackExperts(transposeLast(part('down')))),
  t('experts.down_proj_bias', stackExperts(part('down_bias'))),
];
/** F. granitemoe's original: input_linear [E, 2I, H] (gate half first), output_linear [E, H, I]. */
const graniteLinear = [
  t('input_linear.weight', stackExperts(concat(0, part('gate'), part('up')))),
  t('output_linear.weight', stackExperts(part('down'))),
];
/** G. dbrx: w1 gate and v1 up [E*I, H]; w2 is down transposed, [E*I, H]. */
const dbrxFlattened = [
  t('experts.mlp.w1', flattenLeading(stackExperts(part('gate')))),
  t('experts.mlp.v1', flattenLeading(stackExperts(part('up')))),
  t('experts.mlp.w2', flattenLeading(stackExperts(transposeLast(part('down'))))),
];

const router = (key: string) => t(key, part('router'));
const sharedMlp = (name: string) => [
  t(`${name}.gate_proj.weight`, part('shared_gate_proj'), shared),
  t(`${name}.up_proj.weight`, part('shared_up_proj'), shared),
  t(`${name}.down_proj.weight`, part('shared_down_proj'), shared),
];
const correctionBias = (key: string, op: Op = part('correction_bias')) => t(key, op, (f) => f.correctionBias);

const layer = (module: string) => `model.layers.{L}.${module}`;
const same = (l: ModuleLayout): Record<LayoutName, ModuleLayout> => ({ original: l, fused: l });

// ---- config fields ----

function list(c: ModelConfig, key: string): number[] | undefined {
  if (!c.has(key)) return undefined;
  const v = c.raw[key];
  if (v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x))) {
    throw new LayoutConfigError(`config field ${key} must be a list of integers`, { file: 'config.json', expected: 'integer list', found: v });
  }
  return v as number[];
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const allLayers = (c: ModelConfig) => range(layerCount(c));
const layerCount = (c: ModelConfig) => c.int(['num_hidden_layers', 'n_layers']);

/** qwen2_moe, qwen3_moe, qwen3_next: sparse every `decoder_sparse_step` layers, except `mlp_only_layers`. */
function qwenSparseLayers(c: ModelConfig): number[] {
  const step = c.int('decoder_sparse_step', 1);
  const dense = new Set(list(c, 'mlp_only_layers') ?? []);
  return allLayers(c).filter((i) => !dense.has(i) && step > 0 && (i + 1) % step === 0);
}
/** deepseek, glm4_moe, dots1: dense for the first `first_k_dense_replace` layers. */
const afterFirstDense = (fallback: number) => (c: ModelConfig) =>
  allLayers(c).filter((i) => i >= c.int('first_k_dense_replace', fallback) && i % c.int('moe_layer_freq', 1) === 0);

interface DimFields {
  experts: string | string[];
  intermediate: string | string[];
  topK: string | string[];
  hidden?: string | string[];
  /** Shared-expert intermediate size, 0 for none. */
  shared?: (c: ModelConfig) => number;
  moeLayers?: (c: ModelConfig) => number[];
  features?: (c: ModelConfig) => Partial<Features>;
}

const MAX_LAYERS = 1 << 16;

function dimsFrom(f: DimFields): (c: ModelConfig) => MoeDims {
  return (c) => {
    // Layer lists are built from num_hidden_layers: bound it before anything is allocated.
    const layers = layerCount(c);
    if (layers > MAX_LAYERS) {
      throw new LayoutConfigError('implausible number of layers', { file: 'config.json', expected: `<= ${MAX_LAYERS}`, found: layers });
    }
    const sharedIntermediate = f.shared ? f.shared(c) : 0;
    const features: Features = {
      sharedExpert: sharedIntermediate > 0,
      sharedGate: false,
      routerBias: false,
      correctionBias: false,
      expertBias: false,
      ...(f.features ? f.features(c) : {}),
    };
    const dims: MoeDims = {
      experts: c.int(f.experts),
      hidden: c.int(f.hidden ?? 'hidden_size'),
      intermediate: c.int(f.intermediate),
      sharedIntermediate,
      topK: c.int(f.topK),
      layers,
      moeLayers: (f.moeLayers ?? allLayers)(c),
      features,
    };
    for (const [k, v] of Object.entries(dims)) {
      if (typeof v === 'number' && (v < (k === 'sharedIntermediate' ? 0 : 1) || !Number.isSafeInteger(v))) {
        throw new LayoutConfigError(`config gives an invalid ${k}`, { file: 'config.json', expected: 'a positive integer', found: v });
      }
    }
    if (dims.topK > dims.experts) {
      throw new LayoutConfigError('top-k exceeds the number of experts', { file: 'config.json', expected: `<= ${dims.experts}`, found: dims.topK });
    }
    return dims;
  };
}

// ---- routing, by family (spec/layouts.md §2) ----

const renormalizedSoftmax = (): Routing => ({ kind: 'softmax_topk', renormalize: true, scaling: 1 });
const softmaxNormTopk = (fallback: boolean) => (c: ModelConfig): Routing => ({
  kind: 'softmax_topk',
  renormalize: c.bool('norm_topk_prob', fallback),
  scaling: 1,
});
const sigmoidGrouped = (d: { groups: number; topkGroups: number; norm: boolean; scaling: number }) => (c: ModelConfig): Routing => ({
  kind: 'sigmoid_group_limited_bias',
  groups: c.int('n_group', d.groups),
  topkGroups: c.int('topk_group', d.topkGroups),
  renormalize: c.bool('norm_topk_prob', d.norm),
  scaling: c.num('routed_scaling_factor', d.scaling),
});
const siluGated = (): ExpertActivation => ({ kind: 'silu_gated' });

/** MoE sizes under Mixtral's config names, which minimax, phimoe and granitemoe share. */
const mixtralDims = dimsFrom({ experts: 'num_local_experts', intermediate: 'intermediate_size', topK: 'num_experts_per_tok' });

/** Mixtral's MoE block, which minimax copies: per-expert w1/w2/w3 under block_sparse_moe, v5's fused form under mlp. */
const mixtralBlock = (modelType: string): ModelEntry => ({
  modelType,
  dims: mixtralDims,
  layouts: {
    original: { module: layer('block_sparse_moe'), tensors: [router('gate.weight'), ...perExpertW] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5] },
  },
  routing: renormalizedSoftmax,
  activation: siluGated,
});

// ---- the 20 model types ----

const ENTRIES: ModelEntry[] = [
  mixtralBlock('mixtral'),
  mixtralBlock('minimax'),
  {
    modelType: 'phimoe',
    dims: mixtralDims,
    layouts: {
      original: { module: layer('block_sparse_moe'), tensors: [router('gate.weight'), ...perExpertW] },
      fused: { module: layer('mlp'), tensors: [router('router.weight'), ...fusedV5] },
    },
    // Sparsemixer's mask threshold; PhimoeConfig defaults router_jitter_noise to 0.01.
    routing: (c) => ({ kind: 'sparsemixer', jitterEps: c.num('router_jitter_noise', 0.01) }),
    activation: siluGated,
  },
  {
    modelType: 'lfm2_moe',
    dims: dimsFrom({
      experts: 'num_experts',
      intermediate: 'moe_intermediate_size',
      topK: 'num_experts_per_tok',
      moeLayers: (c) => allLayers(c).filter((i) => i >= c.int('num_dense_layers', 2)),
      features: (c) => ({ correctionBias: c.bool('use_expert_bias', true) }),
    }),
    layouts: {
      original: { module: layer('feed_forward'), tensors: [router('gate.weight'), correctionBias('expert_bias'), ...perExpertW] },
      fused: { module: layer('feed_forward'), tensors: [router('gate.weight'), correctionBias('expert_bias'), ...fusedV5] },
    },
    routing: (c) => ({ kind: 'sigmoid_bias', renormalize: c.bool('norm_topk_prob', true), scaling: c.num('routed_scaling_factor', 1) }),
    activation: siluGated,
  },
  ...(['qwen2_moe', 'qwen3_next'] as const).map(
    (modelType): ModelEntry => ({
      modelType,
      dims: dimsFrom({
        experts: 'num_experts',
        intermediate: 'moe_intermediate_size',
        topK: 'num_experts_per_tok',
        shared: (c) => c.int('shared_expert_intermediate_size'),
        moeLayers: qwenSparseLayers,
        // transformers builds the shared expert and its gate whatever the size (zero-size weights for Is = 0).
        features: () => ({ sharedExpert: true, sharedGate: true }),
      }),
      layouts: {
        original: {
          module: layer('mlp'),
          tensors: [router('gate.weight'), ...perExpertProj, ...sharedMlp('shared_expert'), t('shared_expert_gate.weight', part('shared_gate'), shared)],
        },
        fused: {
          module: layer('mlp'),
          tensors: [router('gate.weight'), ...fusedV5, ...sharedMlp('shared_expert'), t('shared_expert_gate.weight', part('shared_gate'), shared)],
        },
      },
      // Qwen2MoeConfig defaults norm_topk_prob to False, Qwen3NextConfig to True.
      routing: softmaxNormTopk(modelType === 'qwen3_next'),
      activation: siluGated,
    }),
  ),
  ...(['qwen3_moe', 'olmoe', 'flex_olmo'] as const).map(
    (modelType): ModelEntry => ({
      modelType,
      dims: dimsFrom({
        // transformers 5 saves qwen3_moe's count as num_local_experts.
        experts: ['num_experts', 'num_local_experts'],
        intermediate: modelType === 'qwen3_moe' ? 'moe_intermediate_size' : 'intermediate_size',
        topK: 'num_experts_per_tok',
        ...(modelType === 'qwen3_moe' ? { moeLayers: qwenSparseLayers } : {}),
      }),
      layouts: {
        original: { module: layer('mlp'), tensors: [router('gate.weight'), ...perExpertProj] },
        fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5] },
      },
      routing: softmaxNormTopk(false),
      activation: siluGated,
    }),
  ),
  {
    modelType: 'jamba',
    dims: dimsFrom({
      experts: 'num_experts',
      intermediate: 'intermediate_size',
      topK: 'num_experts_per_tok',
      moeLayers: (c) => allLayers(c).filter((i) => i % c.int('expert_layer_period', 2) === c.int('expert_layer_offset', 1)),
    }),
    layouts: {
      original: { module: layer('feed_forward'), tensors: [router('router.weight'), ...perExpertProj] },
      fused: { module: layer('feed_forward'), tensors: [router('router.weight'), ...fusedV5] },
    },
    routing: () => ({ kind: 'softmax_topk', renormalize: false, scaling: 1 }),
    activation: siluGated,
  },
  {
    modelType: 'deepseek_v2',
    dims: dimsFrom({
      experts: 'n_routed_experts',
      intermediate: 'moe_intermediate_size',
      topK: 'num_experts_per_tok',
      shared: (c) => c.int('moe_intermediate_size') * c.int('n_shared_experts', 0),
      moeLayers: afterFirstDense(0),
    }),
    layouts: {
      original: { module: layer('mlp'), tensors: [router('gate.weight'), ...perExpertProj, ...sharedMlp('shared_experts')] },
      fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5, ...sharedMlp('shared_experts')] },
    },
    // topk_method "greedy" (the default) is the group-limited rule with one group kept whole.
    routing: (c) => {
      const grouped = c.str('topk_method', 'greedy') === 'group_limited_greedy';
      return {
        kind: 'softmax_group_limited',
        groups: grouped ? c.int('n_group') : 1,
        topkGroups: grouped ? c.int('topk_group') : 1,
        scaling: c.num('routed_scaling_factor', 1),
      };
    },
    activation: siluGated,
  },
  ...(
    [
      ['deepseek_v3', 3, { groups: 8, topkGroups: 4, norm: true, scaling: 2.5 }],
      ['glm4_moe', 1, { groups: 1, topkGroups: 1, norm: true, scaling: 1 }],
      ['dots1', 0, { groups: 1, topkGroups: 1, norm: false, scaling: 1 }],
    ] as const
  ).map(
    ([modelType, firstDense, defaults]): ModelEntry => ({
      modelType,
      dims: dimsFrom({
        experts: 'n_routed_experts',
        intermediate: 'moe_intermediate_size',
        topK: 'num_experts_per_tok',
        shared: (c) => c.int('moe_intermediate_size') * c.int('n_shared_experts', 1),
        moeLayers: afterFirstDense(firstDense),
        features: () => ({ correctionBias: true }),
      }),
      layouts: {
        original: {
          module: layer('mlp'),
          tensors: [router('gate.weight'), correctionBias('gate.e_score_correction_bias'), ...perExpertProj, ...sharedMlp('shared_experts')],
        },
        fused: {
          module: layer('mlp'),
          tensors: [router('gate.weight'), correctionBias('gate.e_score_correction_bias'), ...fusedV5, ...sharedMlp('shared_experts')],
        },
      },
      routing: sigmoidGrouped(defaults),
      activation: siluGated,
    }),
  ),
  {
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
  },
  {
    modelType: 'hunyuan_v1_moe',
    // HunYuanMoEV1MLP sizes routed and shared experts alike from intermediate_size.
    dims: dimsFrom({
      experts: 'num_experts',
      intermediate: 'intermediate_size',
      topK: 'moe_topk',
      shared: (c) => c.int('intermediate_size'),
    }),
    layouts: {
      original: { module: layer('mlp'), tensors: [router('gate.wg.weight'), ...perExpertProj, ...sharedMlp('shared_mlp')] },
      fused: { module: layer('mlp'), tensors: [router('gate.wg.weight'), ...fusedV5, ...sharedMlp('shared_mlp')] },
    },
    routing: renormalizedSoftmax,
    activation: siluGated,
  },
  {
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
  },
  {
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
  },
  {
    modelType: 'granitemoe',
    dims: mixtralDims,
    layouts: {
      original: { module: layer('block_sparse_moe'), tensors: [router('router.layer.weight'), ...graniteLinear] },
      fused: { module: layer('block_sparse_moe'), tensors: [router('router.weight'), ...fusedV5] },
    },
    routing: () => ({ kind: 'topk_softmax' }),
    activation: siluGated,
  },
  {
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
  },
];

/** DbrxFFNConfig defaults moe_normalize_expert_weights to 1; an explicit null turns normalisation off. */
function pnormOf(c: ModelConfig): number | null {
  const ffn = c.raw['ffn_config'];
  const field = 'moe_normalize_expert_weights';
  if (ffn !== null && typeof ffn === 'object' && field in ffn && (ffn as Record<string, unknown>)[field] === null) return null;
  return c.num(`ffn_config.${field}`, 1);
}

const REGISTRY = new Map<string, ModelEntry>(ENTRIES.map((e) => [e.modelType, e]));

export const MODEL_TYPES: readonly string[] = ENTRIES.map((e) => e.modelType);

export function entryFor(modelType: string): ModelEntry {
  const entry = REGISTRY.get(modelType);
  if (!entry) throw new UnknownModelType('no layout is registered for this model_type', { file: 'config.json', expected: MODEL_TYPES.join('|'), found: modelType });
  return entry;
}

/**
 * What one MoE block of this model type computes, from config.json, before quantization:
 * harness/quant's semanticsOf adds the checkpoint's quantization scheme (what kernels/ read).
 */
export function modelSemanticsOf(c: ModelConfig): MoeSemantics {
  const entry = entryFor(c.modelType);
  const d = entry.dims(c);
  return {
    modelType: c.modelType,
    experts: d.experts,
    topK: d.topK,
    hidden: d.hidden,
    intermediate: d.intermediate,
    sharedIntermediate: d.sharedIntermediate,
    routing: entry.routing(c),
    activation: entry.activation(c),
    sharedGate: d.features.sharedGate,
    moeLayers: d.moeLayers,
  };
}
