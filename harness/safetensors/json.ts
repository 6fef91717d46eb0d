// Strict JSON over UTF-8 bytes, for untrusted input: safetensors headers, index files,
// config.json, results files. JSON.parse cannot be used on hostile input: it keeps the last
// of two duplicate keys silently, turns big integers into imprecise doubles, and builds a
// tree whose size the input chooses (an empty object costs ~60 bytes for its 3 input bytes).
//
// The grammar is RFC 8259 exactly as serde_json reads it (the parser behind the reference
// safetensors reader): no BOM, no comments, no trailing commas, no raw control characters
// in strings, no lone surrogate escapes (serde_json refuses them when the target is a Rust
// String), nesting at most 127 deep (serde_json's recursion limit of 128 refuses the 128th
// level). In addition a key repeated in one object is an error, and so is a key longer
// than MAX_KEY_LENGTH characters (see there).
//
// Two ways to use it:
// - JsonCursor: a position in the bytes with one method per token. Schema-directed
//   parsers (the safetensors header, the index) read straight into the few fields their
//   file can hold and skip everything else with skipValue, which validates without
//   building anything: memory O(nesting), time linear.
// - parseStrictJson: a generic tree (objects as Maps, numbers kept as text), for files
//   whose shape is open (config.json). Its memory is bounded: the parser counts what it
//   builds (erring high) and refuses (JsonTooLarge) a document whose tree would take more
//   than MAX_TREE_FACTOR times its size, plus TREE_SLACK_BYTES. With toPlain's copy, a
//   document costs at most about twice that.
import { isUtf8 } from 'node:buffer';
import { MoeConformanceError, type ErrorContext } from '../errors.js';

export class JsonSyntaxError extends MoeConformanceError {}
export class JsonDuplicateKey extends JsonSyntaxError {}
/** A document whose tree would take more than MAX_TREE_FACTOR × its size in memory. */
export class JsonTooLarge extends JsonSyntaxError {}
/** An object key longer than MAX_KEY_LENGTH characters. */
export class JsonKeyTooLong extends JsonSyntaxError {}

/** A number kept as its source text, so integers up to 2^64-1 stay exact. */
export class JsonNumber {
  constructor(readonly text: string) {}
  /** The value as a double (what a config file's float means). */
  get value(): number {
    return Number(this.text);
  }
  /**
   * The value when the text is an integer in [0, 2^64-1] without sign, fraction or
   * exponent (what serde_json accepts for a u64/usize). The length is checked before any
   * BigInt is made: a hostile megabyte of digits must not cost a quadratic parse.
   */
  get u64(): bigint | undefined {
    if (this.text.length > 20 || !/^(0|[1-9][0-9]*)$/.test(this.text)) return undefined;
    const v = BigInt(this.text);
    return v <= U64_MAX ? v : undefined;
  }
}

/**
 * A parsed value. Integers of at most 15 digits (exact as doubles) are plain numbers; every
 * other number is a JsonNumber, its text kept (u64 sizes, floats as written).
 */
export type JsonValue = null | boolean | string | number | JsonNumber | JsonValue[] | JsonObject;
/** Objects keep key order and treat every key (`__proto__` included) as plain data. */
export type JsonObject = Map<string, JsonValue>;

export const MAX_JSON_DEPTH = 127;
/** The largest u64 (Rust's `u64::MAX`): the bound of every size and offset in a header. */
export const U64_MAX = (1n << 64n) - 1n;
/**
 * The longest object key read, in UTF-16 code units (a JS string's length). V8 hashes a
 * longer string by its length alone (String::kMaxHashCalcLength), so every such key of one
 * length lands in one bucket of each Map, Set, object and string table it enters, and n of
 * them cost n²/2 comparisons there: a 95 MB header of 5,800 tensor names of 16,392
 * characters took 68 s to parse, against 0.6 s for names of 16,383. Keys are names (tensors,
 * config fields, metadata): none real comes near. Keys inside a value that is skipped are
 * not held anywhere and are not checked.
 */
export const MAX_KEY_LENGTH = 16_383;
/** parseStrictJson's tree may take at most this many times the document's size... */
export const MAX_TREE_FACTOR = 8;
/** ...plus this much, so that small documents are never refused for their shape. */
export const TREE_SLACK_BYTES = 1 << 20;

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const encoder = new TextEncoder();

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Where a number token starts and ends, and whether it is a plain non-negative integer. */
export interface NumberToken {
  start: number;
  end: number;
  /** No sign, fraction or exponent: the only form serde_json reads as a u64. */
  unsigned: boolean;
}

/**
 * A position in JSON bytes [0, end). Every method either consumes one well-formed token
 * (and the whitespace after it, where noted) or throws JsonSyntaxError at the position.
 * `describe` adds the context's file and tensor to the message.
 */
export class JsonCursor {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly context: ErrorContext = {},
    readonly end: number = bytes.length,
  ) {}

  fail(what: string, ErrorClass: new (m: string, c: ErrorContext) => JsonSyntaxError = JsonSyntaxError): never {
    throw new ErrorClass(`invalid JSON at byte ${this.pos}: ${what}`, this.context);
  }

  /** The byte at the cursor, or -1 at the end. */
  peek(): number {
    return this.pos < this.end ? this.bytes[this.pos]! : -1;
  }

  ws(): void {
    const b = this.bytes;
    while (this.pos < this.end) {
      const c = b[this.pos]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else return;
    }
  }

  /** What the next value is, for messages: 'object', 'array', 'string', 'number', ... */
  kindAhead(): string {
    const c = this.peek();
    if (c === 0x7b) return 'object';
    if (c === 0x5b) return 'array';
    if (c === QUOTE) return 'string';
    if (c === 0x74 || c === 0x66) return 'boolean';
    if (c === 0x6e) return 'null';
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return 'number';
    return c < 0 ? 'end of input' : `character ${JSON.stringify(String.fromCharCode(c))}`;
  }

  /** Consume `{` or `[` opening level `depth` (the document's outermost container is 1). */
  open(bracket: number, depth: number): void {
    if (this.peek() !== bracket) this.fail(`expected '${String.fromCharCode(bracket)}'`);
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    this.pos++;
    this.ws();
  }

  /** After an open bracket: true (and consumed) when the container is empty. */
  closesAt(close: number): boolean {
    if (this.peek() !== close) return false;
    this.pos++;
    return true;
  }

  /** After a member: `,` (false: another member follows) or the closing bracket (true). */
  next(close: number): boolean {
    this.ws();
    const c = this.peek();
    this.pos++;
    if (c === close) return true;
    if (c !== COMMA) {
      this.pos--;
      this.fail(`expected ',' or '${String.fromCharCode(close)}'`);
    }
    this.ws();
    return false;
  }

  /** `"key"` then `:` and whitespace; returns the key (at most MAX_KEY_LENGTH long, else JsonKeyTooLong). */
  key(): string {
    if (this.peek() !== QUOTE) this.fail('expected a string key');
    const at = this.pos;
    const k = this.string();
    if (k.length > MAX_KEY_LENGTH) this.failAt(at, `key of ${k.length} characters: at most ${MAX_KEY_LENGTH} (a longer one hashes by its length alone)`, JsonKeyTooLong);
    this.ws();
    if (this.peek() !== COLON) this.fail("expected ':'");
    this.pos++;
    this.ws();
    return k;
  }

  literal(word: string): void {
    for (let i = 0; i < word.length; i++) {
      if (this.pos + i >= this.end || this.bytes[this.pos + i] !== word.charCodeAt(i)) this.fail(`expected ${word}`);
    }
    this.pos += word.length;
  }

  /** A number token: RFC 8259 grammar, position after it. */
  number(): NumberToken {
    const b = this.bytes;
    const end = this.end;
    const start = this.pos;
    let p = start;
    let unsigned = true;
    if (b[p] === 0x2d) {
      p++;
      unsigned = false;
    }
    if (p < end && b[p] === 0x30) p++;
    else {
      const from = p;
      while (p < end && b[p]! >= 0x30 && b[p]! <= 0x39) p++;
      if (p === from) return this.failAt(p, 'malformed number');
    }
    if (p < end && b[p] === 0x2e) {
      const from = ++p;
      while (p < end && b[p]! >= 0x30 && b[p]! <= 0x39) p++;
      if (p === from) return this.failAt(p, 'malformed number');
      unsigned = false;
    }
    if (p < end && (b[p] === 0x65 || b[p] === 0x45)) {
      p++;
      if (p < end && (b[p] === 0x2b || b[p] === 0x2d)) p++;
      const from = p;
      while (p < end && b[p]! >= 0x30 && b[p]! <= 0x39) p++;
      if (p === from) return this.failAt(p, 'malformed number');
      unsigned = false;
    }
    this.pos = p;
    return { start, end: p, unsigned };
  }

  private failAt(p: number, what: string, ErrorClass?: new (m: string, c: ErrorContext) => JsonSyntaxError): never {
    this.pos = p;
    return this.fail(what, ErrorClass);
  }

  /** The token's text (ASCII). */
  text(t: NumberToken): string {
    return latin1(this.bytes, t.start, t.end);
  }

  /**
   * serde_json refuses a number whose value as a double is infinite ("number out of range"),
   * wherever it is, a field it then ignores included. Integers with fewer than 309 digits
   * and no exponent are always finite, so only those are converted.
   */
  checkRange(t: NumberToken): void {
    const b = this.bytes;
    let exponent = false;
    for (let p = t.start; p < t.end; p++) {
      if (b[p] === 0x65 || b[p] === 0x45) {
        exponent = true;
        break;
      }
    }
    if (!exponent && t.end - t.start < 309) return;
    if (!Number.isFinite(Number(this.text(t)))) {
      this.pos = t.start;
      this.fail('number out of range (infinite as a double)');
    }
  }

  /**
   * A string token, decoded. The bytes are valid UTF-8 (checked once for the whole input).
   * A string with escapes is unescaped into a byte buffer and decoded once: appending
   * piece by piece would build a rope of one node per escape (30× the text for `\n\n...`).
   */
  string(): string {
    const b = this.bytes;
    const from = ++this.pos; // opening quote
    let p = from;
    for (let c = this.stringByte(p); c !== QUOTE; c = this.stringByte(++p)) {
      if (c === BACKSLASH) return this.unescaped(from, p);
    }
    this.pos = p + 1;
    return decode(b, from, p);
  }

  /** The rest of a string from its first backslash at `p`, unescaped into bytes and decoded once. */
  private unescaped(from: number, p: number): string {
    let out = new Uint8Array(Math.max(64, 2 * (p - from)));
    out.set(this.bytes.subarray(from, p));
    let n = p - from;
    for (let c = this.stringByte(p); c !== QUOTE; c = this.stringByte(p)) {
      if (n + 4 > out.length) {
        const grown = new Uint8Array(2 * out.length);
        grown.set(out.subarray(0, n));
        out = grown;
      }
      if (c !== BACKSLASH) {
        out[n++] = c;
        p++;
        continue;
      }
      this.pos = p + 1;
      n = putUtf8(out, n, this.escape());
      p = this.pos;
    }
    this.pos = p + 1;
    return utf8.decode(out.subarray(0, n));
  }

  /** Skip a string token, validating it exactly as string() does, without building it. */
  skipString(): void {
    let p = ++this.pos;
    for (let c = this.stringByte(p); c !== QUOTE; c = this.stringByte(p)) {
      if (c !== BACKSLASH) {
        p++;
        continue;
      }
      this.pos = p + 1;
      this.escape();
      p = this.pos;
    }
    this.pos = p + 1;
  }

  /** The byte at `p` inside a string: the end of the input and raw control characters are errors there. */
  private stringByte(p: number): number {
    if (p >= this.end) this.failAt(p, 'unterminated string');
    const c = this.bytes[p]!;
    if (c < 0x20) this.failAt(p, 'raw control character in string');
    return c;
  }

  /** After a backslash: one escape, as the code point it stands for. */
  private escape(): number {
    const e = this.pos < this.end ? this.bytes[this.pos++]! : -1;
    switch (e) {
      case 0x22: return 0x22;
      case 0x5c: return 0x5c;
      case 0x2f: return 0x2f;
      case 0x62: return 0x08;
      case 0x66: return 0x0c;
      case 0x6e: return 0x0a;
      case 0x72: return 0x0d;
      case 0x74: return 0x09;
      case 0x75: return this.unicodeEscape();
      default:
        this.pos--;
        return this.fail('invalid escape');
    }
  }

  private hex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.pos < this.end ? this.bytes[this.pos]! : -1;
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) this.fail('invalid \\u escape');
      v = v * 16 + d;
      this.pos++;
    }
    return v;
  }

  private unicodeEscape(): number {
    const hi = this.hex4();
    if (hi >= 0xdc00 && hi <= 0xdfff) this.fail('lone trailing surrogate in \\u escape');
    if (hi < 0xd800 || hi > 0xdbff) return hi;
    if (this.bytes[this.pos] !== BACKSLASH || this.bytes[this.pos + 1] !== 0x75 || this.pos + 1 >= this.end) this.fail('lone leading surrogate in \\u escape');
    this.pos += 2;
    const lo = this.hex4();
    if (lo < 0xdc00 || lo > 0xdfff) this.fail('lone leading surrogate in \\u escape');
    return 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
  }

  /**
   * Skip one value of any kind, validating it as serde_json would while ignoring it
   * (syntax, escapes, nesting, number range); duplicate keys inside it are not looked for
   * (serde ignores the value whole). Memory: the recursion, at most MAX_JSON_DEPTH deep.
   */
  skipValue(depth: number): void {
    const c = this.peek();
    if (c === 0x7b) {
      this.open(0x7b, depth + 1);
      if (this.closesAt(0x7d)) return;
      do {
        if (this.peek() !== QUOTE) this.fail('expected a string key');
        this.skipString();
        this.ws();
        if (this.peek() !== COLON) this.fail("expected ':'");
        this.pos++;
        this.ws();
        this.skipValue(depth + 1);
      } while (!this.next(0x7d));
    } else if (c === 0x5b) {
      this.open(0x5b, depth + 1);
      if (this.closesAt(0x5d)) return;
      do this.skipValue(depth + 1);
      while (!this.next(0x5d));
    } else if (c === QUOTE) this.skipString();
    else if (c === 0x74) this.literal('true');
    else if (c === 0x66) this.literal('false');
    else if (c === 0x6e) this.literal('null');
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) this.checkRange(this.number());
    else this.fail(c < 0 ? 'unexpected end of input' : `unexpected character ${JSON.stringify(String.fromCharCode(c))}`);
  }

  /** At the end of the document: only whitespace may follow. */
  finish(): void {
    this.ws();
    if (this.pos !== this.end) this.fail('trailing characters after the JSON value');
  }
}

/** Append code point `cp` to `out` at `n` as UTF-8 (out has room for 4 bytes); returns the new length. */
function putUtf8(out: Uint8Array, n: number, cp: number): number {
  if (cp < 0x80) out[n++] = cp;
  else if (cp < 0x800) {
    out[n++] = 0xc0 | (cp >> 6);
    out[n++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    out[n++] = 0xe0 | (cp >> 12);
    out[n++] = 0x80 | ((cp >> 6) & 0x3f);
    out[n++] = 0x80 | (cp & 0x3f);
  } else {
    out[n++] = 0xf0 | (cp >> 18);
    out[n++] = 0x80 | ((cp >> 12) & 0x3f);
    out[n++] = 0x80 | ((cp >> 6) & 0x3f);
    out[n++] = 0x80 | (cp & 0x3f);
  }
  return n;
}

function decode(b: Uint8Array, from: number, to: number): string {
  if (from === to) return '';
  // ASCII is most names: decode it without the TextDecoder's call overhead for short runs.
  if (to - from <= 16) {
    let ascii = true;
    for (let p = from; p < to; p++) if (b[p]! >= 0x80) ascii = false;
    if (ascii) return latin1(b, from, to);
  }
  return utf8.decode(b.subarray(from, to));
}

function latin1(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let p = from; p < to; p += 4096) s += String.fromCharCode(...b.subarray(p, Math.min(to, p + 4096)));
  return s;
}

/** UTF-8 bytes of a document: strings are encoded, bytes are checked (invalid UTF-8 is a JsonSyntaxError). */
export function jsonBytes(input: string | Uint8Array, context: ErrorContext = {}): Uint8Array {
  if (typeof input === 'string') return encoder.encode(input);
  if (!isUtf8(input)) throw new JsonSyntaxError('not valid UTF-8', context);
  return input;
}

/** A whole document as a generic tree, within MAX_TREE_FACTOR × its size (else JsonTooLarge). */
export function parseStrictJson(input: string | Uint8Array, context: ErrorContext = {}): JsonValue {
  const bytes = jsonBytes(input, context);
  const builder = new TreeBuilder(new JsonCursor(bytes, context), MAX_TREE_FACTOR * bytes.length + TREE_SLACK_BYTES);
  builder.cursor.ws();
  const v = builder.value(0);
  builder.cursor.finish();
  return v;
}

/**
 * Bytes a V8 heap object of each kind takes (64-bit, no pointer compression), used to keep
 * the tree within its budget, erring on the high side: a Map with its first table, an entry
 * of a grown table (capacity doubles), an exact-size array and one slot, a string's header.
 */
const COST = { map: 200, mapEntry: 64, array: 64, element: 8, string: 24, number: 64 };

class TreeBuilder {
  private spent = 0;
  /** Short number texts share one JsonNumber: `[1,1,1,...]` costs a pointer per element. */
  private readonly numbers = new Map<string, JsonNumber>();

  constructor(
    readonly cursor: JsonCursor,
    private readonly budget: number,
  ) {}

  private spend(bytes: number): void {
    this.spent += bytes;
    if (this.spent > this.budget) {
      this.cursor.fail(`as a tree the document would take more than ${MAX_TREE_FACTOR}× its size in memory`, JsonTooLarge);
    }
  }

  value(depth: number): JsonValue {
    const c = this.cursor;
    const k = c.peek();
    if (k === 0x7b) return this.object(depth + 1);
    if (k === 0x5b) return this.array(depth + 1);
    if (k === QUOTE) {
      const at = c.pos;
      const s = c.string();
      this.spend(COST.string + 2 * (c.pos - at));
      return s;
    }
    if (k === 0x74) return c.literal('true'), true;
    if (k === 0x66) return c.literal('false'), false;
    if (k === 0x6e) return c.literal('null'), null;
    if (k === 0x2d || (k >= 0x30 && k <= 0x39)) {
      const t = c.number();
      const small = smallInteger(c.bytes, t);
      if (small !== undefined) {
        // A slot in its array or map (counted there); above 2^31 also a 16-byte heap number.
        if (Math.abs(small) > 2 ** 31) this.spend(16);
        return small;
      }
      const text = c.text(t);
      if (text.length > 8) {
        this.spend(COST.number + text.length);
        return new JsonNumber(text);
      }
      let n = this.numbers.get(text);
      if (!n) {
        this.spend(COST.number + COST.mapEntry);
        this.numbers.set(text, (n = new JsonNumber(text)));
      }
      return n;
    }
    return c.fail(k < 0 ? 'unexpected end of input' : `unexpected character ${JSON.stringify(String.fromCharCode(k))}`);
  }

  private object(depth: number): JsonObject {
    const c = this.cursor;
    c.open(0x7b, depth);
    this.spend(COST.map);
    const out: JsonObject = new Map();
    if (c.closesAt(0x7d)) return out;
    do {
      const at = c.pos;
      const key = c.key();
      if (out.has(key)) {
        c.pos = at;
        c.fail(`duplicate key ${JSON.stringify(key)}`, JsonDuplicateKey);
      }
      this.spend(COST.mapEntry + COST.string + 2 * (c.pos - at));
      out.set(key, this.value(depth));
    } while (!c.next(0x7d));
    return out;
  }

  /**
   * Elements are collected on one shared stack and each array is sliced from it at its
   * exact size: an array grown by push starts with room for 17 (a 152-byte store for `[1]`).
   */
  private readonly stack: JsonValue[] = [];

  private array(depth: number): JsonValue[] {
    const c = this.cursor;
    c.open(0x5b, depth);
    this.spend(COST.array);
    if (c.closesAt(0x5d)) return [];
    const from = this.stack.length;
    do {
      this.spend(COST.element);
      this.stack.push(this.value(depth));
    } while (!c.next(0x5d));
    const out = this.stack.slice(from);
    this.stack.length = from;
    return out;
  }
}

/** The value of an integer token of at most 15 digits (sign aside), else undefined. */
function smallInteger(b: Uint8Array, t: NumberToken): number | undefined {
  const negative = b[t.start] === 0x2d;
  const from = negative ? t.start + 1 : t.start;
  if (t.end - from > 15) return undefined;
  let v = 0;
  for (let p = from; p < t.end; p++) {
    const d = b[p]! - 0x30;
    if (d < 0 || d > 9) return undefined; // a fraction or an exponent
    v = v * 10 + d;
  }
  return negative ? -v : v;
}

/** Turn a parsed value into plain JS data (numbers as doubles, objects as records). */
export function toPlain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return v.value;
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of v) {
      // Assigning `__proto__` would set the prototype: define it as a plain own property.
      if (k === '__proto__') Object.defineProperty(out, k, { value: toPlain(x), enumerable: true, writable: true, configurable: true });
      else out[k] = toPlain(x);
    }
    return out;
  }
  return v;
}
