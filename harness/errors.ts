// The root of every typed error the harness raises. Each carries what a person needs to
// act on it: which file, which tensor, what was expected and what was found. Subclasses
// (one per failure kind) live beside the module that raises them.
export interface ErrorContext {
  file?: string;
  tensor?: string;
  layer?: number;
  expected?: unknown;
  found?: unknown;
  /** What the program under test wrote on stderr (its tail): shown after the sentence and the context, on its own indented lines. */
  log?: ProgramLog;
}

/** A program's stderr, and whose it is (`loader stderr`, `worker stderr`). */
export interface ProgramLog {
  from: string;
  text: string;
}

/**
 * A program's stderr as an error message ends with it: a header line, then each of its lines
 * indented, so that it never reads as part of the harness's sentence (or the file after it).
 * Empty: nothing.
 */
export function formatLog(log: ProgramLog | undefined): string {
  const text = log?.text.trimEnd();
  if (!log || !text?.trim()) return '';
  return `\n  --- ${log.from} (last lines) ---\n${text.split('\n').map((l) => `    ${l}`).join('\n')}`;
}

export class MoeConformanceError extends Error {
  readonly file?: string;
  readonly tensor?: string;
  readonly layer?: number;
  readonly expected?: unknown;
  readonly found?: unknown;
  readonly log?: ProgramLog;
  /** The message without the context (file, tensor, expected, found) that `message` adds. */
  readonly reason: string;

  constructor(message: string, context: ErrorContext = {}) {
    super(MoeConformanceError.describe(message, context));
    this.name = new.target.name;
    this.reason = message;
    this.file = context.file;
    this.tensor = context.tensor;
    this.layer = context.layer;
    this.expected = context.expected;
    this.found = context.found;
    this.log = context.log;
  }

  private static describe(message: string, c: ErrorContext): string {
    const where: string[] = [];
    if (c.file !== undefined) where.push(`file ${showValue(c.file)}`);
    if (c.layer !== undefined) where.push(`layer ${c.layer}`);
    if (c.tensor !== undefined) where.push(`tensor ${clip(quoted(c.tensor))}`);
    // Only what is known: a missing side is left out, never shown as "undefined".
    const sides = [c.expected !== undefined ? `expected ${showValue(c.expected)}` : '', c.found !== undefined ? `found ${showValue(c.found)}` : ''].filter(Boolean);
    const wants = sides.length ? ` (${sides.join(', ')})` : '';
    return `${message}${wants}${where.length ? ` [${where.join(', ')}]` : ''}${formatLog(c.log)}`;
  }
}

/** The most characters of one value an error shows (a tensor name, a file, an expected or found value). */
export const MAX_SHOWN_CHARS = 300;

/**
 * At most MAX_SHOWN_CHARS characters, then how many there were: a hostile name cannot make a
 * megabyte message. A surrogate pair is never cut in two (a lone half is no character).
 */
function clip(text: string): string {
  if (text.length <= MAX_SHOWN_CHARS) return text;
  const cut = /[\ud800-\udbff]/.test(text[MAX_SHOWN_CHARS - 1]!) ? MAX_SHOWN_CHARS - 1 : MAX_SHOWN_CHARS;
  return `${text.slice(0, cut)}… (${text.length} characters)`;
}

// C0 and C1 controls, DEL, and the line and paragraph separators: a value holding one (a
// newline, an ESC or a C1 CSI that starts a terminal sequence) is shown escaped, as JSON.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const CONTROLS = new RegExp(CONTROL.source, 'g');

/**
 * A string as a JSON string literal with every CONTROL character escaped: JSON.stringify
 * escapes C0 controls only, and leaves DEL, the C1 controls (U+009B is CSI) and U+2028/2029 as
 * they are.
 */
function quoted(text: string): string {
  return escapeControls(JSON.stringify(text));
}

/** Every CONTROL character as a `\uXXXX` escape. */
const escapeControls = (text: string) => text.replace(CONTROLS, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * An expected or found value as one line of text, clipped to MAX_SHOWN_CHARS: strings as they
 * are (quoted and escaped where they hold control characters), anything else as JSON (bigints
 * as digits).
 */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return clip(CONTROL.test(v) ? quoted(v) : v);
  // JSON has no Infinity or NaN (it would print null): those, and bigints, as their digits.
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  let text: string;
  try {
    text = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' || (typeof x === 'number' && !Number.isFinite(x)) ? String(x) : x)) ?? String(v);
  } catch {
    text = String(v);
  }
  return clip(escapeControls(text));
}

/** `1 rank`, `2 ranks`: a count with its noun in the right number. */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}
