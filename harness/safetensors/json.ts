// A strict JSON parser for headers and index files. JSON.parse cannot be used on hostile
// input: it keeps the last of two duplicate keys silently, turns big integers into
// imprecise doubles, and recurses without a bound. This one follows RFC 8259 exactly as
// serde_json does (the parser behind the reference reader): no BOM, no comments, no
// trailing commas, no raw control characters in strings, no lone surrogate escapes
// (serde_json refuses them when the target is a Rust String), nesting at most 127 deep
// (serde_json's recursion limit of 128 refuses the 128th level). In addition a key repeated in one object is an error.
import { MoeConformanceError, type ErrorContext } from '../errors.js';

export class JsonSyntaxError extends MoeConformanceError {}
export class JsonDuplicateKey extends JsonSyntaxError {}

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

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
/** Objects keep key order and treat every key (`__proto__` included) as plain data. */
export type JsonObject = Map<string, JsonValue>;

export const MAX_JSON_DEPTH = 127;
/** The largest u64 (Rust's `u64::MAX`): the bound of every size and offset in a header. */
export const U64_MAX = (1n << 64n) - 1n;

export function parseStrictJson(text: string, context: ErrorContext = {}): JsonValue {
  return new Parser(text, context).document();
}

/** Turn a parsed value into plain JS data (numbers as doubles, objects as null-free records). */
export function toPlain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return v.value;
  if (Array.isArray(v)) return v.map(toPlain);
  // Object.fromEntries defines own properties, so a `__proto__` key stays a plain key.
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  return v;
}

class Parser {
  private pos = 0;
  constructor(
    private readonly s: string,
    private readonly context: ErrorContext,
  ) {}

  document(): JsonValue {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.pos !== this.s.length) this.fail('trailing characters after the JSON value');
    return v;
  }

  private fail(what: string): never {
    throw new JsonSyntaxError(`invalid JSON at character ${this.pos}: ${what}`, this.context);
  }

  private ws(): void {
    const s = this.s;
    for (;;) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else return;
    }
  }

  private value(depth: number): JsonValue {
    const c = this.s[this.pos];
    switch (c) {
      case '{':
        return this.object(depth + 1);
      case '[':
        return this.array(depth + 1);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
    }
  }

  private literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.pos)) this.fail(`expected ${word}`);
    this.pos += word.length;
    return v;
  }

  private enter(depth: number): void {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    this.pos++;
    this.ws();
  }

  private object(depth: number): JsonObject {
    this.enter(depth);
    const out: JsonObject = new Map();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      if (this.s[this.pos] !== '"') this.fail('expected a string key');
      const at = this.pos;
      const key = this.string();
      if (out.has(key)) {
        throw new JsonDuplicateKey(`duplicate key ${JSON.stringify(key)} at character ${at}`, this.context);
      }
      this.ws();
      if (this.s[this.pos] !== ':') this.fail("expected ':'");
      this.pos++;
      this.ws();
      out.set(key, this.value(depth));
      this.ws();
      const c = this.s[this.pos++];
      if (c === '}') return out;
      if (c !== ',') this.fail("expected ',' or '}'");
      this.ws();
    }
  }

  private array(depth: number): JsonValue[] {
    this.enter(depth);
    const out: JsonValue[] = [];
    if (this.s[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.ws();
      const c = this.s[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.fail("expected ',' or ']'");
      this.ws();
    }
  }

  private number(): JsonNumber {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.pos;
    const hit = m.exec(this.s);
    if (!hit) this.fail('malformed number');
    this.pos += hit[0].length;
    return new JsonNumber(hit[0]);
  }

  private string(): string {
    const s = this.s;
    this.pos++; // opening quote
    let out = '';
    let run = this.pos;
    for (;;) {
      const c = s.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 0x22) {
        out += s.slice(run, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('raw control character in string');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += s.slice(run, this.pos);
      this.pos++;
      const e = s[this.pos++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': out += this.unicodeEscape(); break;
        default: this.fail('invalid escape');
      }
      run = this.pos;
    }
  }

  private hex4(): number {
    const h = this.s.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail('invalid \\u escape');
    this.pos += 4;
    return parseInt(h, 16);
  }

  private unicodeEscape(): string {
    const hi = this.hex4();
    if (hi >= 0xdc00 && hi <= 0xdfff) this.fail('lone trailing surrogate in \\u escape');
    if (hi < 0xd800 || hi > 0xdbff) return String.fromCharCode(hi);
    if (this.s[this.pos] !== '\\' || this.s[this.pos + 1] !== 'u') this.fail('lone leading surrogate in \\u escape');
    this.pos += 2;
    const lo = this.hex4();
    if (lo < 0xdc00 || lo > 0xdfff) this.fail('lone leading surrogate in \\u escape');
    return String.fromCharCode(hi, lo);
  }
}
