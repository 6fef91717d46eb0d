// The header's JSON read straight into what a header can hold: tensor entries (dtype,
// shape, data_offsets) and the `__metadata__` string map. No generic tree is built, so
// memory is the entries themselves (a small multiple of their text, see spec §5) and
// everything else is skipped in place: a field the reference ignores is validated by
// JsonCursor.skipValue and dropped. Structure a header cannot have (a top-level array, an
// object in a shape, a tensor entry that is a number) is refused where it is met.
//
// The reference (huggingface/safetensors, safetensors/src/tensor.rs) deserializes
// `HashMetadata { #[serde(rename = "__metadata__")] metadata: Option<HashMap<String,
// String>>, #[serde(flatten)] tensors: HashMap<String, TensorInfo> }` with serde_json, and
// `TensorInfo { dtype: Dtype, shape: Vec<usize>, data_offsets: (usize, usize) }`. The rules
// below follow it; the five places where this reader is deliberately stricter are spec §5.
import { isDType, type DType } from './dtypes.js';
import { DuplicateKey, InvalidHeaderDeserialization, InvalidHeaderStart, UnknownDtype } from './errors.js';
import { JsonCursor, JsonDuplicateKey, JsonSyntaxError, U64_MAX } from './json.js';

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  dataOffsets: [number, number];
}

/**
 * Exact values of the numbers of one entry that are not safe integers (kept as doubles in
 * its TensorInfo). Such an entry is always refused by validation; the exact values decide
 * with which error, as the reference's u64 arithmetic would.
 */
export interface ExactValues {
  /** Index in the shape to exact value. */
  shape?: Map<number, bigint>;
  begin?: bigint;
  end?: bigint;
}

export interface HeaderEntries {
  /** In the order of the header. */
  tensors: Map<string, TensorInfo>;
  metadata: Map<string, string> | undefined;
  /** Only entries with a number above 2^53 - 1 are here. */
  exact: Map<TensorInfo, ExactValues>;
}

/** The longest array `new Array(n)` makes with fast elements, with a margin. */
const PRESIZE_LIMIT = 1 << 24;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;

/**
 * How many entries the array of numbers starting at `p` has: its commas plus one, up to
 * the first byte that cannot be part of a list of numbers (normally the closing bracket).
 */
function countEntries(b: Uint8Array, p: number, end: number): number {
  let n = 1;
  for (; p < end; p++) {
    const x = b[p]!;
    if (x === 0x2c) n++;
    else if (!((x >= 0x30 && x <= 0x39) || x === 0x20 || x === 0x0a || x === 0x0d || x === 0x09 || x === 0x2d || x === 0x2b || x === 0x2e || x === 0x65 || x === 0x45)) break;
  }
  return n;
}

/** Number of ASCII digits from `p`. */
function digitsOf(b: Uint8Array, p: number, end: number): number {
  let q = p;
  while (q < end && b[q]! >= 0x30 && b[q]! <= 0x39) q++;
  return q - p;
}

/**
 * The integer at `p` when it is a plain JSON integer of 1 to 15 digits (no sign, no leading
 * zero, not followed by a fraction or exponent), else -1.
 */
function shortInteger(b: Uint8Array, p: number, end: number): number {
  const n = digitsOf(b, p, end);
  if (n === 0 || n > 15 || (n > 1 && b[p] === 0x30)) return -1;
  const next = p + n < end ? b[p + n]! : -1;
  if (next === 0x2e || next === 0x65 || next === 0x45) return -1;
  let v = 0;
  for (let q = p; q < p + n; q++) v = v * 10 + (b[q]! - 0x30);
  return v;
}

/** The JSON of a header (valid UTF-8, checked by the caller) into its entries. */
export function readHeaderEntries(json: Uint8Array, file?: string): HeaderEntries {
  const c = new JsonCursor(json, { file });
  try {
    return new HeaderReader(c, file).document();
  } catch (e) {
    if (e instanceof JsonDuplicateKey) throw new DuplicateKey(e.message, { file });
    if (e instanceof JsonSyntaxError) throw new InvalidHeaderDeserialization(e.message, { file });
    throw e;
  }
}

class HeaderReader {
  private readonly tensors = new Map<string, TensorInfo>();
  private metadata: Map<string, string> | undefined;
  private metadataSeen = false;
  private readonly exact = new Map<TensorInfo, ExactValues>();

  constructor(
    private readonly c: JsonCursor,
    private readonly file: string | undefined,
  ) {}

  private schema(what: string, tensor: string | undefined, found?: unknown): never {
    throw new InvalidHeaderDeserialization(`${what} (at byte ${this.c.pos})`, { file: this.file, tensor, found });
  }

  private duplicate(key: string, at: number, tensor?: string): never {
    throw new DuplicateKey(`duplicate key ${JSON.stringify(key)} at byte ${at}`, { file: this.file, tensor });
  }

  document(): HeaderEntries {
    const c = this.c;
    c.ws();
    // serde_json skips JSON whitespace before the value (the reference allows padded
    // headers since #686); anything else before the '{' is refused here, before any parse.
    if (c.peek() !== OPEN_OBJECT) {
      const found = c.peek() < 0 ? 'end of header' : JSON.stringify(new TextDecoder().decode(c.bytes.subarray(c.pos, c.pos + 4)).slice(0, 1));
      throw new InvalidHeaderStart("header does not start with '{'", { file: this.file, expected: '{', found });
    }
    c.open(OPEN_OBJECT, 1);
    if (!c.closesAt(CLOSE_OBJECT)) {
      do {
        const at = c.pos;
        const name = c.key();
        if (name === '__metadata__') {
          if (this.metadataSeen) this.duplicate(name, at);
          this.metadataSeen = true;
          this.metadata = this.readMetadata();
        } else {
          if (this.tensors.has(name)) this.duplicate(name, at, name);
          this.tensors.set(name, this.readTensor(name));
        }
      } while (!c.next(CLOSE_OBJECT));
    }
    c.finish();
    return { tensors: this.tensors, metadata: this.metadata, exact: this.exact };
  }

  /** `__metadata__`: an optional string-to-string map (null means absent, as serde's Option). */
  private readMetadata(): Map<string, string> | undefined {
    const c = this.c;
    if (c.peek() === 0x6e) {
      c.literal('null');
      return undefined;
    }
    if (c.peek() !== OPEN_OBJECT) this.schema('__metadata__ must be an object of strings', '__metadata__', c.kindAhead());
    c.open(OPEN_OBJECT, 2);
    const out = new Map<string, string>();
    if (c.closesAt(CLOSE_OBJECT)) return out;
    do {
      const at = c.pos;
      const k = c.key();
      if (out.has(k)) this.duplicate(k, at, '__metadata__');
      if (c.peek() !== QUOTE) this.schema(`__metadata__ value of ${JSON.stringify(k)} must be a string`, '__metadata__', c.kindAhead());
      out.set(k, c.string());
    } while (!c.next(CLOSE_OBJECT));
    return out;
  }

  /**
   * One tensor entry: an object whose unknown fields are ignored, as the reference's
   * `TensorInfo` (serde without deny_unknown_fields) does; the three known ones are required.
   */
  private readTensor(name: string): TensorInfo {
    const c = this.c;
    if (c.peek() === OPEN_ARRAY) {
      // serde's derived Deserialize also reads a struct from a sequence of its fields.
      this.schema('tensor entry must be an object (the array form ["DTYPE", shape, offsets] that the Rust reader also reads is refused: spec §5)', name, 'array');
    }
    if (c.peek() !== OPEN_OBJECT) this.schema('tensor entry must be an object', name, c.kindAhead());
    c.open(OPEN_OBJECT, 2);
    let dtype: DType | undefined;
    let shape: number[] | undefined;
    let offsets: [number, number] | undefined;
    const exact: ExactValues = {};
    if (!c.closesAt(CLOSE_OBJECT)) {
      do {
        const at = c.pos;
        const field = c.key();
        const seen = field === 'dtype' ? dtype : field === 'shape' ? shape : field === 'data_offsets' ? offsets : undefined;
        if (seen !== undefined) this.duplicate(field, at, name);
        if (field === 'dtype') dtype = this.readDtype(name);
        else if (field === 'shape') shape = this.readShape(name, exact);
        else if (field === 'data_offsets') offsets = this.readOffsets(name, exact);
        else c.skipValue(2);
      } while (!c.next(CLOSE_OBJECT));
    }
    if (dtype === undefined) this.schema('dtype must be a string', name, 'nothing');
    if (shape === undefined) this.schema('shape must be an array', name, 'nothing');
    if (offsets === undefined) this.schema('data_offsets must be an array of two integers', name, 'nothing');
    const info: TensorInfo = { name, dtype, shape, dataOffsets: offsets };
    if (exact.shape || exact.begin !== undefined || exact.end !== undefined) this.exact.set(info, exact);
    return info;
  }

  private readDtype(name: string): DType {
    const c = this.c;
    if (c.peek() === OPEN_OBJECT) {
      // serde's derived Deserialize also reads a unit enum variant from {"BF16": null}.
      this.schema('dtype must be a string (the one-key object form {"DTYPE": null} that the Rust reader also reads is refused: spec §5)', name, 'object');
    }
    if (c.peek() !== QUOTE) this.schema('dtype must be a string', name, c.kindAhead());
    const dtype = c.string();
    if (!isDType(dtype)) throw new UnknownDtype('unknown dtype', { file: this.file, tensor: name, found: dtype });
    return dtype;
  }

  private readShape(name: string, exact: ExactValues): number[] {
    const c = this.c;
    if (c.peek() !== OPEN_ARRAY) this.schema('shape must be an array', name, c.kindAhead());
    c.open(OPEN_ARRAY, 3);
    if (c.closesAt(CLOSE_ARRAY)) return [];
    // Sized before it is filled (an array grown by push holds up to 2.5 copies at its peak),
    // up to the length past which V8 makes `new Array(n)` a slow dictionary (2^25).
    const count = countEntries(c.bytes, c.pos, c.end);
    const shape: number[] = count <= PRESIZE_LIMIT ? new Array(count) : [];
    let i = 0;
    do {
      // Short plain integers (every real dimension) are read here without a token object;
      // anything else (long, signed, fractional, not a number) goes through unsigned().
      const v = shortInteger(c.bytes, c.pos, c.end);
      if (v >= 0) {
        shape[i++] = v;
        c.pos += digitsOf(c.bytes, c.pos, c.end);
        continue;
      }
      const u = this.unsigned('shape entry', name);
      if (typeof u === 'bigint') (exact.shape ??= new Map()).set(i, u);
      shape[i++] = Number(u);
    } while (!c.next(CLOSE_ARRAY));
    shape.length = i; // countEntries is exact for every shape that parses
    return shape;
  }

  private readOffsets(name: string, exact: ExactValues): [number, number] {
    const c = this.c;
    const bad = (found: string): never => this.schema('data_offsets must be an array of two integers', name, found);
    if (c.peek() !== OPEN_ARRAY) bad(c.kindAhead());
    c.open(OPEN_ARRAY, 3);
    if (c.closesAt(CLOSE_ARRAY)) bad('0 entries');
    const begin = this.unsigned('data_offsets entry', name);
    if (c.next(CLOSE_ARRAY)) bad('1 entry');
    const end = this.unsigned('data_offsets entry', name);
    if (!c.next(CLOSE_ARRAY)) bad('more than 2 entries');
    if (typeof begin === 'bigint') exact.begin = begin;
    if (typeof end === 'bigint') exact.end = end;
    return [Number(begin), Number(end)];
  }

  /** An integer in [0, 2^64-1] as serde_json reads a usize: a number when safe, else a bigint. */
  private unsigned(what: string, name: string): number | bigint {
    const c = this.c;
    const kind = c.kindAhead();
    if (kind !== 'number') this.schema(`${what} must be an integer in [0, 2^64-1]`, name, kind);
    const t = c.number();
    const length = t.end - t.start;
    if (!t.unsigned || length > 20) {
      c.checkRange(t); // serde_json's "number out of range" comes before its type error
      this.schema(`${what} must be an integer in [0, 2^64-1]`, name, `number ${length > 40 ? `of ${length} characters` : c.text(t)}`);
    }
    const b = c.bytes;
    if (length <= 15) {
      let v = 0;
      for (let p = t.start; p < t.end; p++) v = v * 10 + (b[p]! - 0x30);
      return v;
    }
    const v = BigInt(c.text(t));
    if (v > U64_MAX) this.schema(`${what} must be an integer in [0, 2^64-1]`, name, `number ${c.text(t)}`);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
}
