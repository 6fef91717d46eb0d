// JSON text the way Python's `json.dumps(value, indent=2, sort_keys=True)` writes it, which
// is how transformers writes config.json and model.safetensors.index.json: keys sorted by
// code point, non-ASCII escaped as \uXXXX (ensure_ascii), ", " -> ",\n", ": " after keys.
// Numbers: safe integers as integers, other finite numbers like Python's float repr
// (exponent form below 1e-4 and from 1e16, written 1e-06). JS cannot tell 1.0 from 1, so
// an integral float below 2^53 is written as an integer; non-finite numbers are refused by
// the caller.

function pyString(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function pyNumber(x: number): string {
  if (Number.isSafeInteger(x)) return String(x);
  const [mantissa, exp] = x.toExponential().split('e') as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 16) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  return String(x); // JS and Python agree on the fixed form in this range
}

function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

export function pythonJson(value: unknown, indent = ''): string {
  const inner = indent + '  ';
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return pyString(value);
  if (typeof value === 'number') return pyNumber(value);
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + pythonJson(v, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => byCodePoint(a, b));
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${pyString(k)}: ${pythonJson(v, inner)}`).join(',\n')}\n${indent}}`;
}
