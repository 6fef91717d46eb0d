// Hostile safetensors files of a chosen size, the shapes that cost the old tree-building
// header parser 30-70× their size (issue 17): shared by the memory test, the fuzzer's
// seeds and its amplification mutator. Each is built in one buffer, without a JS string of
// the header, so that making it does not cost more memory than parsing it should.

/** Fill `[at, at + count × unit.length)` of `out` with `unit` repeated. */
function repeatInto(out: Uint8Array, at: number, unit: Uint8Array, count: number): number {
  if (count === 0) return at;
  out.set(unit, at);
  let filled = unit.length;
  const total = unit.length * count;
  while (filled < total) {
    const n = Math.min(filled, total - filled);
    out.copyWithin(at + filled, at, at + n);
    filled += n;
  }
  return at + total;
}

const ascii = (s: string) => new TextEncoder().encode(s);

/**
 * A file: 8-byte length, `head`, `unit` × count, `tail`, padded with spaces to a multiple of
 * 8, then `data` zero bytes. `count` is chosen so that the header is about `size` bytes.
 */
function build(head: string, unit: string, tail: string, size: number, data: number): Uint8Array {
  const [h, u, t] = [ascii(head), ascii(unit), ascii(tail)];
  const count = Math.max(0, Math.floor((size - h.length - t.length) / u.length));
  const json = h.length + u.length * count + t.length;
  const n = Math.ceil(json / 8) * 8;
  const out = new Uint8Array(8 + n + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  let at = 8;
  out.set(h, at);
  at = repeatInto(out, at + h.length, u, count);
  out.set(t, at);
  out.fill(0x20, at + t.length, 8 + n);
  return out;
}

const TENSOR = '"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]';

export interface HostileFile {
  name: string;
  /** Whether the reference (and this reader) accepts it. */
  valid: boolean;
  make(size: number): Uint8Array;
}

/** One per amplifying shape; `make(size)` gives a file whose header is about `size` bytes. */
export const HOSTILE: readonly HostileFile[] = [
  // An ignored field the reference parses and drops: `[{},{},...]` cost 69× its size.
  { name: 'ignored field: array of empty objects', valid: true, make: (s) => build(`{${TENSOR},"x":[{}`, ',{}', ']}}', s, 1) },
  { name: 'ignored field: array of small numbers', valid: true, make: (s) => build(`{${TENSOR},"x":[1`, ',1', ']}}', s, 1) },
  { name: 'ignored field: array of empty arrays', valid: true, make: (s) => build(`{${TENSOR},"x":[[]`, ',[]', ']}}', s, 1) },
  { name: 'ignored field: nested 120 deep, repeated', valid: true, make: (s) => build(`{${TENSOR},"x":[0`, `,${'['.repeat(120)}${']'.repeat(120)}`, ']}}', s, 1) },
  { name: 'shape of many 1s', valid: true, make: (s) => build('{"w":{"dtype":"U8","data_offsets":[0,1],"shape":[1', ',1', ']}}', s, 1) },
  { name: 'metadata value of escapes', valid: true, make: (s) => build('{"__metadata__":{"k":"', '\\n', '"}}', s, 0) },
  { name: 'top-level array of empty objects', valid: false, make: (s) => build('[{}', ',{}', ']', s, 0) },
  { name: 'unterminated array of empty objects', valid: false, make: (s) => build(`{${TENSOR},"x":[{}`, ',{}', '', s, 1) },
];

/** Many tensors of one byte each, names counting up in base 36: a valid file. */
export function manyTensors(size: number): Uint8Array {
  const parts: string[] = [];
  let length = 2;
  let i = 0;
  while (length < size) {
    const p = `"${i.toString(36)}":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`;
    parts.push(p);
    length += p.length + 1;
    i++;
  }
  const json = ascii(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + i).fill(0x20, 8 + json.length, 8 + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}

/** Many `__metadata__` entries with short distinct keys and empty values: a valid file. */
export function manyMetadata(size: number): Uint8Array {
  const parts: string[] = [];
  let length = 17;
  for (let i = 0; length < size; i++) {
    const p = `"${i.toString(36)}":""`;
    parts.push(p);
    length += p.length + 1;
  }
  const json = ascii(`{"__metadata__":{${parts.join(',')}}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}
