// Element types of safetensors, in the declaration order of the reference's `Dtype` enum
// (huggingface/safetensors, safetensors/src/tensor.rs). That order is meaningful: the enum
// derives `Ord`, and the writer sorts tensors by it (descending) before their names, so a
// dtype's index here is its "alignment" rank.

const DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
} as const;

export type DType = keyof typeof DTYPE_BITS;

/** Every dtype, in the reference enum's order (ascending alignment rank). */
export const DTYPES: readonly DType[] = Object.keys(DTYPE_BITS) as DType[];

const RANK = new Map<string, number>(DTYPES.map((d, i) => [d, i]));

export function isDType(s: string): s is DType {
  return RANK.has(s);
}

/** Bits per element (4 for F4, 6 for the F6 formats). */
export function dtypeBits(d: DType): number {
  return DTYPE_BITS[d];
}

/**
 * The key the reference writer sorts by, descending: the position of the dtype in the
 * `Dtype` enum (not its bit size: F64 ranks below I64, C64 below F64).
 */
export function dtypeAlignment(d: DType): number {
  return RANK.get(d)!;
}
