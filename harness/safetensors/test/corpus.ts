// Tricky headers with the verdict this reader must give (`ours`: 'accept' or the exact
// error class). Where the reference (the Rust reader, through Python's safetensors) gives
// another verdict, `difference` names the rule of spec §5 that makes us stricter; the
// verdicts the reference gave are recorded in corpus-rust.json by
// bench/fuzz/differential.ts, and corpus.test.ts checks both without Python.

export interface CorpusCase {
  name: string;
  /** The header JSON; or `headerHex` for bytes that are not valid UTF-8. */
  header?: string;
  headerHex?: string;
  /** Zero bytes of data after the header (default 0). */
  data?: number;
  /** Override of the 8-byte header length (default: the header's length). */
  prefix?: string;
  ours: 'accept' | string;
  /** The rule of spec §5 under which we refuse what the reference accepts. */
  difference?: '5.1' | '5.2' | '5.3' | '5.4' | '5.5';
}

const W = '"dtype":"F32","shape":[2],"data_offsets":[0,8]';
const U = (extra: string) => `{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],${extra}}}`;

export const CORPUS: readonly CorpusCase[] = [
  { name: 'one F32 tensor', header: `{"w":{${W}}}`, data: 8, ours: 'accept' },
  { name: 'empty header object', header: '{}', ours: 'accept' },
  { name: 'padded with spaces', header: `{"w":{${W}}}       `, data: 8, ours: 'accept' },
  { name: 'leading whitespace', header: ` \n\t\r{"w":{${W}}}`, data: 8, ours: 'accept' },
  { name: 'fields in another order, whitespace inside', header: '{ "w" : { "data_offsets" : [ 0 , 8 ] , "shape" : [ 2 ] , "dtype" : "F32" } }', data: 8, ours: 'accept' },
  { name: 'scalar and empty tensors', header: '{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]}}', data: 4, ours: 'accept' },
  { name: 'tensors out of offset order', header: '{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', data: 4, ours: 'accept' },
  { name: 'empty tensor name', header: `{"":{${W}}}`, data: 8, ours: 'accept' },
  { name: 'tensor named __proto__', header: `{"__proto__":{${W}}}`, data: 8, ours: 'accept' },
  { name: 'tensor name of 16,383 characters', header: `{"${'n'.repeat(16_383)}":{${W}}}`, data: 8, ours: 'accept' },
  { name: 'tensor name of 16,384 characters', header: `{"${'n'.repeat(16_384)}":{${W}}}`, data: 8, ours: 'InvalidHeaderDeserialization', difference: '5.5' },
  { name: 'tensor name of 16,384 characters, escaped', header: `{"${'\\n'.repeat(16_384)}":{${W}}}`, data: 8, ours: 'InvalidHeaderDeserialization', difference: '5.5' },
  { name: '__metadata__ key of 16,384 characters', header: `{"__metadata__":{"${'k'.repeat(16_384)}":"v"}}`, ours: 'InvalidHeaderDeserialization', difference: '5.5' },
  { name: 'key of 16,384 characters inside an ignored field', header: U(`"zz":{"${'k'.repeat(16_384)}":1}`), data: 1, ours: 'accept' },
  { name: 'escaped name with a surrogate pair', header: `{"\\ud83d\\ude00\\n":{${W}}}`, data: 8, ours: 'accept' },
  { name: '__metadata__ null', header: '{"__metadata__":null}', ours: 'accept' },
  { name: '__metadata__ spelled with an escape', header: '{"__metadata\\u005f_":{"format":"pt"}}', ours: 'accept' },
  { name: 'unknown fields in a tensor entry', header: U('"zz":{"a":[1,2.5,-3e-2,true,null,"x"]}'), data: 1, ours: 'accept' },
  { name: 'duplicate keys inside an ignored field', header: U('"zz":{"a":1,"a":2}'), data: 1, ours: 'accept' },
  { name: 'ignored field nested to depth 127', header: U(`"zz":${'['.repeat(125)}${']'.repeat(125)}`), data: 1, ours: 'accept' },
  { name: 'ignored field nested to depth 128', header: U(`"zz":${'['.repeat(126)}${']'.repeat(126)}`), data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'ignored number 1e400 (out of range)', header: U('"zz":1e400'), data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'ignored number -1e400', header: U('"zz":-1e400'), data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'ignored number 1e-400 (underflows to 0)', header: U('"zz":1e-400'), data: 1, ours: 'accept' },
  { name: 'ignored integer of 400 digits', header: U(`"zz":1${'0'.repeat(399)}`), data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'ignored integer of 300 digits', header: U(`"zz":1${'0'.repeat(299)}`), data: 1, ours: 'accept' },
  { name: 'ignored number 1.7976931348623157e308 (largest double)', header: U('"zz":1.7976931348623157e308'), data: 1, ours: 'accept' },
  { name: 'ignored number 1e309', header: U('"zz":1e309'), data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'ignored integer above 2^64', header: U('"zz":184467440737095516160'), data: 1, ours: 'accept' },
  { name: 'ignored number 1e400 inside a nested ignored array', header: U('"zz":[[{"a":1e400}]]'), data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'ignored string with a lone surrogate escape', header: U('"zz":"\\ud800"'), data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'ignored string with a raw control character', header: U('"zz":"a\tb"'), data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'tensor entry as a JSON array', header: '{"w":["F32",[2],[0,8]]}', data: 8, ours: 'InvalidHeaderDeserialization', difference: '5.1' },
  { name: 'tensor entry as an array of 4', header: '{"w":["F32",[2],[0,8],1]}', data: 8, ours: 'InvalidHeaderDeserialization' },
  { name: 'tensor entry as an array of 2', header: '{"w":["F32",[2]]}', data: 8, ours: 'InvalidHeaderDeserialization' },
  { name: 'dtype as a one-key object with null', header: '{"w":{"dtype":{"F32":null},"shape":[2],"data_offsets":[0,8]}}', data: 8, ours: 'InvalidHeaderDeserialization', difference: '5.2' },
  { name: 'dtype as a one-key object with an array', header: '{"w":{"dtype":{"F32":[]},"shape":[2],"data_offsets":[0,8]}}', data: 8, ours: 'InvalidHeaderDeserialization' },
  { name: 'dtype as a two-key object', header: '{"w":{"dtype":{"F32":null,"U8":null},"shape":[2],"data_offsets":[0,8]}}', data: 8, ours: 'InvalidHeaderDeserialization' },
  { name: 'dtype as a one-key object of an unknown dtype', header: '{"w":{"dtype":{"F128":null},"shape":[2],"data_offsets":[0,8]}}', data: 8, ours: 'InvalidHeaderDeserialization' },
  { name: 'dtype as a variant index', header: '{"w":{"dtype":17,"shape":[2],"data_offsets":[0,8]}}', data: 8, ours: 'InvalidHeaderDeserialization' },
  { name: 'duplicate tensor name, same entry', header: `{"w":{${W}},"w":{${W}}}`, data: 8, ours: 'DuplicateKey', difference: '5.3' },
  { name: 'duplicate tensor name, the first entry uncovered', header: `{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, data: 2, ours: 'DuplicateKey' },
  { name: 'duplicate __metadata__ key', header: '{"__metadata__":{"format":"pt","format":"np"}}', ours: 'DuplicateKey', difference: '5.3' },
  { name: 'duplicate __metadata__', header: '{"__metadata__":{},"__metadata__":{}}', ours: 'DuplicateKey' },
  { name: 'duplicate field in a tensor entry', header: `{"w":{${W},"shape":[2]}}`, data: 8, ours: 'DuplicateKey' },
  { name: 'shape entry above 2^53 in an empty tensor', header: '{"w":{"dtype":"U8","shape":[9007199254740993,0],"data_offsets":[0,0]}}', ours: 'ValidationOverflow', difference: '5.4' },
  { name: 'shape entry 2^64-1 in an empty tensor', header: '{"w":{"dtype":"U8","shape":[0,18446744073709551615],"data_offsets":[0,0]}}', ours: 'ValidationOverflow', difference: '5.4' },
  { name: 'shape entry 2^64', header: '{"w":{"dtype":"U8","shape":[18446744073709551616,0],"data_offsets":[0,0]}}', ours: 'InvalidHeaderDeserialization' },
  { name: 'shape entry 1e400', header: '{"w":{"dtype":"U8","shape":[1e400],"data_offsets":[0,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'element count overflows u64', header: '{"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}', ours: 'ValidationOverflow' },
  { name: 'overflow before a zero dimension', header: '{"w":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}', ours: 'ValidationOverflow' },
  { name: 'bit count overflows u64', header: '{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}', ours: 'ValidationOverflow' },
  { name: 'offset 2^64-1', header: '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551615]}}', data: 1, ours: 'TensorInvalidInfo' },
  { name: 'offsets past 2^53 that agree with the shape', header: '{"w":{"dtype":"U8","shape":[9007199254740993],"data_offsets":[0,9007199254740993]}}', ours: 'ValidationOverflow' },
  { name: 'element count overflows u64 in a shape of 24 dimensions', header: `{"w":{"dtype":"U8","shape":[${Array(23).fill(8).join(',')},4],"data_offsets":[0,0]}}`, ours: 'ValidationOverflow' },
  { name: 'two empty tensors at offsets past 2^53', header: '{"a":{"dtype":"U8","shape":[0],"data_offsets":[9007199254740995,9007199254740995]},"b":{"dtype":"U8","shape":[0],"data_offsets":[9007199254740993,9007199254740993]}}', ours: 'InvalidOffset' },
  { name: 'tensors at 0 and at 2^64-1', header: '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}}', data: 1, ours: 'InvalidOffset' },
  { name: 'shape entry -0', header: '{"w":{"dtype":"U8","shape":[-0],"data_offsets":[0,0]}}', ours: 'InvalidHeaderDeserialization' },
  { name: 'shape entry 1.0', header: '{"w":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'shape entry 1e0', header: '{"w":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'shape entry a string', header: '{"w":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'shape entry an object', header: '{"w":{"dtype":"U8","shape":[{}],"data_offsets":[0,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'shape an object', header: '{"w":{"dtype":"U8","shape":{"0":1},"data_offsets":[0,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'three data_offsets', header: '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'one data_offset', header: '{"w":{"dtype":"U8","shape":[0],"data_offsets":[0]}}', ours: 'InvalidHeaderDeserialization' },
  { name: 'missing dtype', header: '{"w":{"shape":[1],"data_offsets":[0,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'null dtype', header: '{"w":{"dtype":null,"shape":[1],"data_offsets":[0,1]}}', data: 1, ours: 'InvalidHeaderDeserialization' },
  { name: 'lower-case dtype', header: '{"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}', data: 8, ours: 'UnknownDtype' },
  { name: 'tensor entry a number', header: '{"w":1}', ours: 'InvalidHeaderDeserialization' },
  { name: 'tensor entry null', header: '{"w":null}', ours: 'InvalidHeaderDeserialization' },
  { name: '__metadata__ value a number', header: '{"__metadata__":{"format":1}}', ours: 'InvalidHeaderDeserialization' },
  { name: '__metadata__ value 1e400', header: '{"__metadata__":{"format":1e400}}', ours: 'InvalidHeaderDeserialization' },
  { name: '__metadata__ an array', header: '{"__metadata__":["pt"]}', ours: 'InvalidHeaderDeserialization' },
  { name: '__metadata__ value with a lone surrogate', header: '{"__metadata__":{"a":"\\udc00"}}', ours: 'InvalidHeaderDeserialization' },
  { name: 'top-level array', header: '[]', ours: 'InvalidHeaderStart' },
  { name: 'UTF-8 BOM', header: '\ufeff{}', ours: 'InvalidHeaderStart' },
  { name: 'empty header', header: '', ours: 'InvalidHeaderStart' },
  { name: 'NUL padding', header: '{}\0\0\0\0\0\0', ours: 'InvalidHeaderDeserialization' },
  { name: 'two objects', header: '{}{}', ours: 'InvalidHeaderDeserialization' },
  { name: 'trailing comma', header: `{"w":{${W}},}`, data: 8, ours: 'InvalidHeaderDeserialization' },
  { name: 'invalid UTF-8', headerHex: '7b22ff223a317d', ours: 'InvalidHeader' },
  { name: 'UTF-8-encoded surrogate', headerHex: '7b22eda080223a317d', ours: 'InvalidHeader' },
  { name: 'header length past the end', header: '{}', prefix: '100', ours: 'InvalidHeaderLength' },
  { name: 'header length above 100,000,000', header: '{}', prefix: '100000001', ours: 'HeaderTooLarge' },
  { name: 'F4 with an odd element count', header: '{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', data: 2, ours: 'MisalignedSlice' },
  { name: 'byte length disagrees with the shape', header: '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', data: 4, ours: 'TensorInvalidInfo' },
  { name: 'hole between tensors', header: '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', data: 3, ours: 'InvalidOffset' },
  { name: 'trailing data bytes', header: `{"w":{${W}}}`, data: 9, ours: 'MetadataIncompleteBuffer' },
];

/** The file bytes of a case. */
export function corpusFile(c: CorpusCase): Uint8Array {
  const h = c.headerHex !== undefined ? Uint8Array.from(c.headerHex.match(/../g) ?? [], (x) => parseInt(x, 16)) : new TextEncoder().encode(c.header ?? '');
  const out = new Uint8Array(8 + h.length + (c.data ?? 0));
  new DataView(out.buffer).setBigUint64(0, c.prefix !== undefined ? BigInt(c.prefix) : BigInt(h.length), true);
  out.set(h, 8);
  return out;
}
