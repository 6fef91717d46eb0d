// Seeds and mutators of the safetensors fuzzer. Every input is a pure function of
// (seed, worker, index), so any finding replays from its three numbers (`--replay`).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dtypeBits, DTYPES } from '../../harness/safetensors/dtypes.js';
import { HOSTILE } from '../../harness/safetensors/test/hostile.js';
import { serializeSafetensors } from '../../harness/safetensors/write.js';
import { CORPUS, corpusFile } from '../../harness/safetensors/test/corpus.js';

/** mulberry32: small, fast, good enough to pick mutations. */
export function rng(...seeds: number[]): () => number {
  let a = 0x9e3779b9;
  for (const s of seeds) a = Math.imul(a ^ (s >>> 0), 0x85ebca6b) ^ (a >>> 13);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

/** Valid files: generated tensors of every dtype, the golden fixtures' small shards, the corpus, small hostile shapes. */
export function seeds(goldenDir: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const r = rng(1);
  for (const dtype of DTYPES) {
    for (const shape of [[], [0], [2], [2, 3], [4, 0, 2], [8, 8]]) {
      const bits = dtypeBits(dtype);
      const n = shape.reduce((a, b) => a * b, 1);
      if ((n * bits) % 8 !== 0) continue;
      const bytes = Uint8Array.from({ length: (n * bits) / 8 }, () => int(r, 256));
      out.push(serializeSafetensors([[`t.${dtype}`, { dtype, shape, bytes }]], { format: 'pt' }));
    }
  }
  out.push(
    serializeSafetensors(
      [
        ['model.layers.0.mlp.experts.gate_up_proj', { dtype: 'BF16', shape: [2, 4, 3], bytes: new Uint8Array(48) }],
        ['model.layers.0.mlp.experts.down_proj', { dtype: 'BF16', shape: [2, 3, 2], bytes: new Uint8Array(24) }],
        ['ünïcødé \u{1F600}', { dtype: 'F32', shape: [1], bytes: new Uint8Array(4) }],
        ['__proto__', { dtype: 'U8', shape: [0], bytes: new Uint8Array(0) }],
      ],
      { format: 'pt', 'a"b': 'c\\d\n' },
    ),
  );
  for (const c of CORPUS) out.push(corpusFile(c));
  for (const h of HOSTILE) out.push(h.make(512));
  try {
    for (const dir of readdirSync(goldenDir)) {
      for (const sub of ['', 'original', 'fused']) {
        let names: string[] = [];
        try {
          names = readdirSync(join(goldenDir, dir, sub));
        } catch {
          continue;
        }
        for (const name of names) {
          const path = join(goldenDir, dir, sub, name);
          if (name.endsWith('.safetensors') && statSync(path).size < 32 * 1024) out.push(readFileSync(path));
        }
      }
    }
  } catch {
    // no golden fixtures: generated seeds only
  }
  return out;
}

const INTERESTING_NUMBERS = ['0', '1', '-1', '-0', '7', '8', '255', '4294967295', '4294967296', '9007199254740991', '9007199254740992', '9007199254740993', '18446744073709551615', '18446744073709551616', '1e400', '-1e400', '1e-400', '1.0', '1e2', '0.5', '1' + '0'.repeat(400), '00', '1.', '.5', '+1', '0x10'];
const INTERESTING_VALUES = ['null', 'true', 'false', '[]', '{}', '""', '"F32"', '"BF16"', '"F4"', '"__metadata__"', '{"BF16":null}', '["BF16",[1],[0,2]]', '[0,1]', '[0,1,2]', '[[1]]', '[{}]', '{"a":1}', '"\\ud800"', '"\\udc00x"', '"\\u0000"', '"\\uD83D\\uDE00"', '1e400', '"a\\"b"'];
const INTERESTING_KEYS = ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '""', '"__proto__"', '"constructor"', '"zz"', '"w"'];

interface Tokens {
  json: string;
  /** [start, end) of every value token or container, and of every key. */
  values: Array<[number, number]>;
  keys: Array<[number, number]>;
  numbers: Array<[number, number]>;
}

/** A loose tokenizer for mutation only: finds values, keys and numbers in text that may not be valid JSON. */
function tokens(json: string): Tokens {
  const values: Array<[number, number]> = [];
  const keys: Array<[number, number]> = [];
  const numbers: Array<[number, number]> = [];
  const stack: number[] = [];
  for (let i = 0; i < json.length && values.length < 4096; i++) {
    const c = json[i]!;
    if (c === '"') {
      const start = i;
      for (i++; i < json.length && json[i] !== '"'; i++) if (json[i] === '\\') i++;
      let j = i + 1;
      while (json[j] === ' ') j++;
      (json[j] === ':' ? keys : values).push([start, i + 1]);
    } else if (c === '{' || c === '[') stack.push(i);
    else if (c === '}' || c === ']') {
      const s = stack.pop();
      if (s !== undefined) values.push([s, i + 1]);
    } else if (/[-0-9]/.test(c)) {
      const m = /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(json.slice(i, i + 512));
      if (m) {
        numbers.push([i, i + m[0].length]);
        values.push([i, i + m[0].length]);
        i += m[0].length - 1;
      }
    }
  }
  return { json, values, keys, numbers };
}

const splice = (s: string, [a, b]: [number, number], x: string) => s.slice(0, a) + x + s.slice(b);

/** A file whose header is `json` (length prefix right, or wrong on purpose) and data section `data`. */
function file(json: Uint8Array, data: Uint8Array, prefix?: bigint): Uint8Array {
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, prefix ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function split(f: Uint8Array): { json: Uint8Array; data: Uint8Array } {
  if (f.length < 8) return { json: f, data: new Uint8Array(0) };
  const n = Number(new DataView(f.buffer, f.byteOffset, 8).getBigUint64(0, true));
  const end = Math.min(f.length, 8 + (Number.isFinite(n) ? n : 0));
  return { json: f.subarray(8, end), data: f.subarray(end) };
}

type TextMutator = (r: Rand, t: Tokens) => string;

const TEXT_MUTATORS: Record<string, TextMutator> = {
  number: (r, t) => (t.numbers.length ? splice(t.json, pick(r, t.numbers), pick(r, INTERESTING_NUMBERS)) : t.json),
  value: (r, t) => (t.values.length ? splice(t.json, pick(r, t.values), pick(r, INTERESTING_VALUES)) : t.json),
  key: (r, t) => (t.keys.length ? splice(t.json, pick(r, t.keys), pick(r, INTERESTING_KEYS)) : t.json),
  'swap values': (r, t) => {
    if (t.values.length < 2) return t.json;
    const a = pick(r, t.values);
    const b = pick(r, t.values);
    if (a[1] > b[0] && b[1] > a[0]) return t.json;
    const [x, y] = a[0] < b[0] ? [a, b] : [b, a];
    const s = t.json;
    return s.slice(0, x[0]) + s.slice(y[0], y[1]) + s.slice(x[1], y[0]) + s.slice(x[0], x[1]) + s.slice(y[1]);
  },
  'copy value': (r, t) => (t.values.length ? splice(t.json, pick(r, t.values), t.json.slice(...pick(r, t.values))) : t.json),
  'duplicate member': (r, t) => {
    if (!t.keys.length) return t.json;
    const k = pick(r, t.keys);
    const v = t.values.find(([a]) => a > k[1] && a <= k[1] + 3);
    if (!v) return t.json;
    const member = t.json.slice(k[0], v[1]);
    return t.json.slice(0, v[1]) + ',' + member + t.json.slice(v[1]);
  },
  'delete value': (r, t) => (t.values.length ? splice(t.json, pick(r, t.values), '') : t.json),
  'wrap value': (r, t) => {
    if (!t.values.length) return t.json;
    const v = pick(r, t.values);
    const depth = pick(r, [1, 2, 100, 126, 127, 128, 200]);
    const [open, close] = r() < 0.5 ? ['[', ']'] : ['{"k":', '}'];
    return splice(t.json, v, open.repeat(depth) + t.json.slice(...v) + close.repeat(depth));
  },
  'entry as array': (_r, t) => t.json.replace(/\{"dtype":("[A-Z0-9_]+"),"shape":(\[[^\]]*\]),"data_offsets":(\[[^\]]*\])\}/, '[$1,$2,$3]'),
  'dtype as object': (_r, t) => t.json.replace(/"dtype":("[A-Z0-9_]+")/, '"dtype":{$1:null}'),
  'ignored field': (r, t) => t.json.replace(/"data_offsets":/, `"zz":${pick(r, INTERESTING_VALUES)},"data_offsets":`),
  whitespace: (r, t) => {
    const at = int(r, t.json.length + 1);
    return t.json.slice(0, at) + pick(r, [' ', '\n', '\t', '\r', '\u00a0', '\u2028', '\ufeff', '\0']) + t.json.slice(at);
  },
};

type ByteMutator = (r: Rand, f: Uint8Array, all: Uint8Array[]) => Uint8Array;

const BYTE_MUTATORS: Record<string, ByteMutator> = {
  'flip bit': (r, f) => {
    const out = f.slice();
    if (out.length) out[int(r, Math.min(out.length, 4096))]! ^= 1 << int(r, 8);
    return out;
  },
  'set byte': (r, f) => {
    const out = f.slice();
    if (out.length) out[int(r, Math.min(out.length, 4096))] = pick(r, [0, 0x20, 0x22, 0x2c, 0x5b, 0x5d, 0x7b, 0x7d, 0x5c, 0x7f, 0x80, 0xc0, 0xed, 0xef, 0xf4, 0xff, int(r, 256)]);
    return out;
  },
  'delete bytes': (r, f) => {
    const a = int(r, f.length + 1);
    const b = Math.min(f.length, a + 1 + int(r, 16));
    const out = new Uint8Array(f.length - (b - a));
    out.set(f.subarray(0, a));
    out.set(f.subarray(b), a);
    return out;
  },
  'insert bytes': (r, f) => {
    const a = int(r, f.length + 1);
    const ins = Uint8Array.from({ length: 1 + int(r, 8) }, () => int(r, 256));
    const out = new Uint8Array(f.length + ins.length);
    out.set(f.subarray(0, a));
    out.set(ins, a);
    out.set(f.subarray(a), a + ins.length);
    return out;
  },
  'header length': (r, f) => {
    const out = f.length >= 8 ? f.slice() : new Uint8Array(8);
    const n = f.length - 8;
    const v = pick(r, [0n, 1n, 2n, 7n, 8n, BigInt(Math.max(0, n - 1)), BigInt(n + 1), BigInt(n + 8), 100_000_000n, 100_000_001n, (1n << 32n) - 1n, (1n << 53n) + 1n, (1n << 63n), (1n << 64n) - 1n]);
    new DataView(out.buffer).setBigUint64(0, v, true);
    return out;
  },
  'data length': (r, f) => {
    const d = pick(r, [-8, -2, -1, 1, 2, 8, 4096]);
    const out = new Uint8Array(Math.max(0, f.length + d));
    out.set(f.subarray(0, Math.min(f.length, out.length)));
    return out;
  },
  truncate: (r, f) => f.subarray(0, int(r, f.length + 1)),
  'splice seeds': (r, f, all) => {
    const g = pick(r, all);
    const a = int(r, f.length + 1);
    const b = int(r, g.length + 1);
    const out = new Uint8Array(a + g.length - b);
    out.set(f.subarray(0, a));
    out.set(g.subarray(b), a);
    return out;
  },
};

/**
 * Repeat one token of the header many times (up to about `maxBytes`): the inputs whose
 * memory per byte the fuzzer watches. The length prefix is fixed up, the data kept.
 */
function amplify(r: Rand, f: Uint8Array, maxBytes: number): Uint8Array {
  const { json, data } = split(f);
  const text = dec.decode(json);
  const t = tokens(text);
  const unit = t.values.length && r() < 0.8 ? text.slice(...pick(r, t.values)) : pick(r, ['{},', '[],', '1,', '[1],', '"a":"",', '[[[[]]]],', '\\n', '0.5,']);
  const times = Math.max(1, Math.floor((maxBytes * (0.1 + 0.9 * r())) / Math.max(1, unit.length)));
  const at = int(r, text.length + 1);
  const sep = /[\]}"0-9le]$/.test(unit) && !unit.endsWith(',') ? ',' : '';
  const piece = enc.encode(unit + sep);
  const head = enc.encode(text.slice(0, at));
  const tail = enc.encode(text.slice(at));
  const out = new Uint8Array(head.length + piece.length * times + tail.length);
  out.set(head);
  out.set(piece, head.length);
  let filled = piece.length;
  while (filled < piece.length * times) {
    const n = Math.min(filled, piece.length * times - filled);
    out.copyWithin(head.length + filled, head.length, head.length + n);
    filled += n;
  }
  out.set(tail, head.length + piece.length * times);
  return file(out, data);
}

export interface Input {
  bytes: Uint8Array;
  /** Names of the mutations applied, in order. */
  recipe: string[];
}

/** Input number `index` of worker `worker` in a run seeded `seed`. */
export function makeInput(all: Uint8Array[], seed: number, worker: number, index: number, maxAmplified: number): Input {
  const r = rng(seed, worker, index);
  let bytes = pick(r, all);
  const recipe: string[] = [];
  if (r() < 0.003) {
    recipe.push('amplify');
    return { bytes: amplify(r, bytes, r() < 0.3 ? maxAmplified : maxAmplified / 8), recipe };
  }
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds; k++) {
    if (r() < 0.6) {
      const name = pick(r, Object.keys(TEXT_MUTATORS));
      const { json, data } = split(bytes);
      if (json.length > 1 << 20) continue;
      const text = TEXT_MUTATORS[name]!(r, tokens(dec.decode(json)));
      const j = enc.encode(text);
      // Mostly keep the file well-framed, so that the JSON is what gets tested.
      bytes = file(j, data, r() < 0.9 ? undefined : BigInt(json.length));
      recipe.push(name);
    } else {
      const name = pick(r, Object.keys(BYTE_MUTATORS));
      bytes = BYTE_MUTATORS[name]!(r, bytes, all);
      recipe.push(name);
    }
  }
  return { bytes, recipe };
}
