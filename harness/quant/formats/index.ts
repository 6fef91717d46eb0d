// Every quantized expert format the harness knows, one module each: config detection, stored
// tensors, canonical companions and their TP/EP cut, dequantization and random generation
// (../format.ts). Adding a format is one module and one line here.
import type { PartSizes, QuantGeometry } from '../../layouts/ops.js';
import { entryFor, MODEL_TYPES } from '../../layouts/registry.js';
import { MoeConformanceError } from '../../errors.js';
import { QuantConfigError } from '../errors.js';
import type { QuantFormat } from '../format.js';
import { FP8_BLOCK, type Fp8BlockScheme } from './fp8-block.js';
import { FP8_STATIC, fp8StaticScheme, type Fp8StaticScheme } from './fp8-static.js';
import { MXFP4, MXFP4_CT_SCHEME, type Mxfp4Scheme } from './mxfp4.js';
import { NVFP4, nvfp4Scheme, type Nvfp4Scheme } from './nvfp4.js';
import { INT4_CT, int4CtScheme, type Int4CtScheme } from './int4-ct.js';
import { INT4_GPTQ, int4GptqScheme, type Int4GptqScheme } from './int4-gptq.js';
import { INT4_AWQ, int4AwqScheme, type Int4AwqScheme } from './int4-awq.js';

export type QuantScheme = Fp8BlockScheme | Mxfp4Scheme | Nvfp4Scheme | Fp8StaticScheme | Int4CtScheme | Int4GptqScheme | Int4AwqScheme;

export const FORMATS: readonly QuantFormat<QuantScheme>[] = [FP8_BLOCK, MXFP4, NVFP4, FP8_STATIC, INT4_CT, INT4_GPTQ, INT4_AWQ] as unknown as readonly QuantFormat<QuantScheme>[];

export const QUANT_METHODS: readonly string[] = FORMATS.map((f) => f.method);

/** The format of a scheme (or of the geometry the layout floor carries). */
export function formatOf(g: QuantGeometry): QuantFormat<QuantScheme> {
  const f = FORMATS.find((x) => x.method === g.method);
  if (!f) throw new QuantConfigError('unknown quantization scheme', { expected: QUANT_METHODS.join('|'), found: g.method });
  return f;
}

/**
 * The quantized dtypes by name (`generate --dtype`, case IDs' `dtype=`), each one scheme: the
 * default of each format, and the static FP8 variants of its three producers.
 */
/** The same scheme with the shared experts quantized like the routed ones (their config ignore list does not exempt them). */
const withShared = <S extends QuantScheme>(s: S): S => ({ ...s, sharedQuantized: true });

export const QUANT_DTYPES = {
  fp8: FP8_BLOCK.defaultScheme,
  /** FP8 blocks with the shared experts quantized too, as DeepSeek-V3's published checkpoints store them (`shared_experts.*.weight_scale_inv`). */
  'fp8-shared': withShared(FP8_BLOCK.defaultScheme),
  /** MXFP4: gpt_oss's published form; every other layout the weight's own tree with `weight_scale` beside it (spec/layouts.md §4.6). */
  mxfp4: MXFP4.defaultScheme,
  /** MXFP4 with the shared experts quantized too. */
  'mxfp4-shared': withShared(MXFP4.defaultScheme),
  /** compressed-tensors `mxfp4-pack-quantized` (llm-compressor): `weight_packed` U8 + `weight_scale` U8 in every layout, gpt_oss's included. */
  'mxfp4-ct': MXFP4_CT_SCHEME,
  nvfp4: NVFP4.defaultScheme,
  /** NVFP4 with one global scale (`weight_scale_2`, `input_scale`) per expert that gate and up share: fused `[E]`. */
  'nvfp4-merged': nvfp4Scheme('expert'),
  /** NVFP4 with one global scale per stored tensor (`[]`): ModelOpt's llama4 / gpt_oss export. Shared experts quantized too. */
  'nvfp4-tensor': withShared(nvfp4Scheme('tensor')),
  /** `quant_method: "fp8"` without `weight_block_size`, static activation scales. */
  'fp8-tensor': fp8StaticScheme('fp8', 'tensor', true),
  /** ModelOpt FP8: per-tensor, static activation scales. */
  'fp8-modelopt': fp8StaticScheme('modelopt', 'tensor', true),
  /** ModelOpt FP8 with one weight_scale and input_scale per fused tensor (`[]`), as it exports llama4's and gpt_oss's experts. */
  'fp8-modelopt-tensor': fp8StaticScheme('modelopt', 'tensor', true, 'tensor'),
  /** compressed-tensors float-quantized, per-tensor, static activation scales. */
  'fp8-ct-tensor': fp8StaticScheme('compressed-tensors', 'tensor', true),
  /** compressed-tensors float-quantized, per-channel, dynamic activations (no input_scale). Shared experts quantized too. */
  'fp8-ct-channel': withShared(fp8StaticScheme('compressed-tensors', 'channel', false)),
  /** compressed-tensors pack-quantized INT4 (W4A16): symmetric, groups of 32. Shared experts quantized too. */
  'int4-ct-g32': withShared(int4CtScheme(32, true)),
  /** asymmetric (zero points), groups of 64. */
  'int4-ct-g64-asym': int4CtScheme(64, false),
  /** asymmetric, groups of 32, no act order: the golden fixture qwen3_moe-int4-g32-asym's scheme. */
  'int4-ct-g32-asym': int4CtScheme(32, false),
  /** symmetric, groups of 128 (llm-compressor's W4A16 default). */
  'int4-ct-g128': int4CtScheme(128, true),
  /** asymmetric, groups of 32, `actorder: "group"` (weight_g_idx). */
  'int4-ct-g32-actorder': int4CtScheme(32, false, true),
  /** GPTQ v1 (AutoGPTQ: zeros stored - 1), symmetric, groups of 32, no act order. Shared experts quantized too. */
  'int4-gptq-g32': withShared(int4GptqScheme(32, true)),
  /** GPTQ v1, asymmetric, groups of 64. */
  'int4-gptq-g64-asym': int4GptqScheme(64, false),
  /** GPTQ v1 with desc_act (g_idx in activation order), symmetric, groups of 32. */
  'int4-gptq-g32-desc-act': int4GptqScheme(32, true, true, true),
  /** GPTQModel v2 zeros (stored as is), asymmetric, groups of 32. */
  'int4-gptq-v2-g32-asym': int4GptqScheme(32, false, false),
  /** AutoAWQ GEMM, groups of 32 (zero points always). Shared experts quantized too. */
  'int4-awq-g32': withShared(int4AwqScheme(32)),
  /** AutoAWQ GEMM, groups of 128 (its default). */
  'int4-awq-g128': int4AwqScheme(128),
} as const satisfies Record<string, QuantScheme>;

export type QuantDtypeName = keyof typeof QUANT_DTYPES;
export const QUANT_DTYPE_NAMES = Object.keys(QUANT_DTYPES) as QuantDtypeName[];

const PROBE: Omit<PartSizes, 'quant'> = { experts: 2, hidden: 256, intermediate: 256, sharedIntermediate: 256 };

/**
 * The model types whose layouts a scheme can store: the format accepts the type and both its
 * layouts, and the experts are gated (gate and up: the companions pair a gate and an up half).
 * The formats refuse the others with a reason.
 */
export function modelTypesFor(scheme: QuantScheme): string[] {
  const format = formatOf(scheme);
  return MODEL_TYPES.filter((t) => {
    const entry = entryFor(t);
    try {
      format.check(t, { hidden: 1 << 12, intermediate: 1 << 12 }, scheme, 'config.json');
      const layouts = [entry.layouts.original, entry.layouts.fused].map((l) => format.layout(l, scheme));
      return layouts.every((l) => l.tensors.some((x) => x.op({ ...PROBE, quant: scheme }).placements.some((p) => p.part === 'gate')));
    } catch (e) {
      if (e instanceof MoeConformanceError) return false;
      throw e;
    }
  });
}
