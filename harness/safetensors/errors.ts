// Typed errors of the safetensors codec. The first group mirrors the error kinds of the
// reference reader (huggingface/safetensors, safetensors/src/tensor.rs, `SafeTensorError`)
// one for one, so a finding here can be compared with what the Rust/Python loader says.
// The rest refine one of those kinds (a subclass) or cover what the reference leaves to
// its callers (I/O, byte ranges, lazy sources).
import { MoeConformanceError } from '../errors.js';

export class SafetensorError extends MoeConformanceError {}

/** The file is shorter than the 8-byte header length. */
export class HeaderTooSmall extends SafetensorError {}
/** The declared header length is above the reference's 100,000,000-byte limit. */
export class HeaderTooLarge extends SafetensorError {}
/** 8 + the declared header length runs past the end of the file. */
export class InvalidHeaderLength extends SafetensorError {}
/** The header bytes are not valid UTF-8. */
export class InvalidHeader extends SafetensorError {}
/** The header is UTF-8 but not a well-formed safetensors header (JSON syntax or schema). */
export class InvalidHeaderDeserialization extends SafetensorError {}
/**
 * The header's first non-whitespace character is not '{' (a UTF-8 BOM included: it is valid
 * UTF-8 but not JSON). The reference dropped its own check of this kind in #686 and lets
 * serde_json fail instead, hence a refinement of InvalidHeaderDeserialization.
 */
export class InvalidHeaderStart extends InvalidHeaderDeserialization {}
/** A key appears twice in one JSON object (JSON.parse would keep the last one silently). */
export class DuplicateKey extends InvalidHeaderDeserialization {}
/** A dtype string the reference does not know. */
export class UnknownDtype extends InvalidHeaderDeserialization {}
/** The requested tensor is not in the file. */
export class TensorNotFound extends SafetensorError {}
/** A tensor's byte length disagrees with its shape and dtype. */
export class TensorInvalidInfo extends SafetensorError {}
/** Tensor offsets are not contiguous from 0 (hole, overlap, or end before begin). */
export class InvalidOffset extends SafetensorError {}
/** A tensor to write whose bytes do not match its shape and dtype. */
export class InvalidTensorView extends SafetensorError {}
/** Element count or bit count does not fit (u64 in the reference, safe integers here). */
export class ValidationOverflow extends SafetensorError {}
/** A lazy source yielded a different number of bytes than it declared. */
export class ValidationMismatch extends SafetensorError {}
/** A sub-byte dtype whose tensor does not end on a byte boundary. */
export class MisalignedSlice extends SafetensorError {}
/** The tensors do not cover the data section exactly (trailing bytes, or data missing). */
export class MetadataIncompleteBuffer extends SafetensorError {}
/** A byte range outside a tensor, or not made of integers. */
export class InvalidSlice extends SafetensorError {}
/** A name the format cannot hold (`__metadata__`, or a string that is not valid Unicode). */
export class InvalidTensorName extends SafetensorError {}
/** A dtype the float codecs do not decode or encode. */
export class UnsupportedDtype extends SafetensorError {}
/**
 * A tensor (or a range of one) larger than the largest buffer this platform can allocate
 * (MAX_BUFFER_BYTES: 2^32 bytes in Node 20). Read it in pieces: SafetensorsFile.chunks,
 * readBytes or readRanges of parts.
 */
export class TensorTooLarge extends SafetensorError {}
/** The operating system refused a read or write, or the file changed under us. */
export class SafetensorIoError extends SafetensorError {}
