// A minimal WebAssembly binary emitter: just the sections and opcodes the GEMM module
// needs (one imported shared memory, a function table, i32 and v128 arithmetic). Emitting
// bytes from TypeScript keeps the fast path free of build tools and runtime dependencies;
// the encodings follow the WebAssembly core spec §5 and the SIMD proposal's opcode table.

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
/** One of I32, F32, V128. */
export type ValType = number;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 for 32-bit integers. */
function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => vec([...Buffer.from(s, 'utf8')].map((b) => [b]));

/** Instructions, as byte arrays to concatenate. Memory offsets are byte offsets. */
export const op = {
  localGet: (i: number) => [0x20, ...uleb(i)],
  localSet: (i: number) => [0x21, ...uleb(i)],
  localTee: (i: number) => [0x22, ...uleb(i)],
  i32Const: (v: number) => [0x41, ...sleb(v)],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  i32GtU: [0x4b],
  select: [0x1b],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  callIndirect: (typeIndex: number) => [0x11, ...uleb(typeIndex), 0x00],
  f32Add: [0x92],
  i32AtomicRmwAdd: (offset = 0) => [0xfe, ...uleb(0x1e), 0x02, ...uleb(offset)],
  f32Store: (offset = 0) => [0x38, 0x02, ...uleb(offset)],
  v128Load: (offset = 0) => [0xfd, ...uleb(0x00), 0x04, ...uleb(offset)],
  f32x4ExtractLane: (lane: number) => [0xfd, ...uleb(0x1f), lane],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
};

export interface FunctionDef {
  params: ValType[];
  results: ValType[];
  /** Extra locals after the parameters, in order. */
  locals: ValType[];
  body: number[][];
  /** Exported under this name when given. */
  exportName?: string;
}

export interface ModuleDef {
  /** Imported as `env.memory`, shared, with this many 64 KiB pages at most. */
  memoryMaxPages: number;
  functions: FunctionDef[];
  /** Function indices placed in table 0 from slot 0, for `call_indirect`. */
  table: number[];
}

/** Encodes the module. Each function gets its own type (the module has few). */
export function emitModule(def: ModuleDef): Uint8Array {
  const types = def.functions.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]);
  // Shared memory limits: flag 0x03 = has maximum + shared.
  const memoryImport = [...name('env'), ...name('memory'), 0x02, 0x03, ...uleb(1), ...uleb(def.memoryMaxPages)];
  const funcs = def.functions.map((_, i) => uleb(i));
  const table = [0x70, 0x00, ...uleb(def.table.length)];
  const exports = def.functions.flatMap((f, i) => (f.exportName === undefined ? [] : [[...name(f.exportName), 0x00, ...uleb(i)]]));
  const elements = [0x00, ...op.i32Const(0), ...op.end, ...vec(def.table.map((i) => uleb(i)))];
  const codes = def.functions.map((f) => {
    const locals = vec(f.locals.map((t) => [1, t]));
    const body = [...locals, ...f.body.flat(), ...op.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([memoryImport])),
    ...section(3, vec(funcs)),
    ...section(4, vec([table])),
    ...section(7, vec(exports)),
    ...section(9, vec([elements])),
    ...section(10, vec(codes)),
  ]);
}
