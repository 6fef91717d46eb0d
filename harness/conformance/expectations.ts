// Known failures and skips, one line each, like WebGPU CTS expectations or ONNX's
// BackendTest exclusions:
//
//   # comment
//   moe:load:model=gpt_oss;*              fail  # interleaved biases not supported yet
//   moe:forward:model=phimoe;tp=4;*       skip  # too slow on this runner
//
// `fail` means the case is expected to fail: it passes the run when it fails (status
// xfail) and breaks the run when it passes (status unexpected-pass), so fixed bugs cannot
// hide behind a stale line. `skip` means the case is not run. The first matching line wins.
//
// A `fail` line may also say which failure it expects, so an engine's known limits fit in a
// few broad lines:
//   moe:*:*              fail reason=/FP8\sis\snot\ssupported/   # no FP8 yet
//   moe:load:model=*;*   fail diagnosis=*-swapped                  # kind of failure.diagnosis
// `reason=/REGEX/` matches the failure's message (no whitespace in it: use \s; no flag g or y), and
// `diagnosis=KIND` (with * wildcards; one that matches no kind the diagnosis gives is refused)
// the kind of any entry of the failure's diagnosis. Such
// a line applies only to a case that fails that way: other failures stay failures, and
// cases that pass are not unexpected passes.
import { MoeConformanceError } from '../errors.js';
import { DIAGNOSIS_KINDS } from '../compare/diagnose.js';
import { readBoundedFileAs } from '../safetensors/bounded-read.js';
import { formatCasePattern, globMatch, matchesPattern, parseCasePattern, type CaseId, type CasePattern } from './case-id.js';
import type { CaseFailure } from './results.js';

export class ExpectationsError extends MoeConformanceError {}

/** The largest expectations file read (spec §5). */
export const EXPECTATIONS_MAX_BYTES = 16 << 20;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export type ExpectationKind = 'fail' | 'skip';

export interface Expectation {
  pattern: CasePattern;
  kind: ExpectationKind;
  reason: string;
  /** 1-based line in the file it came from (0 when built in code). */
  line: number;
  /** The failure this line expects (a `fail` line only): the case must fail this way. */
  when?: FailureCondition;
}

export interface FailureCondition {
  /** Matched against the failure's message. */
  reason?: RegExp;
  /** Glob matched against the kinds of the failure's diagnosis entries. */
  diagnosis?: string;
}

/** The kinds of a failure's diagnosis (issue 13: `failure.diagnosis` = [{tensor, kind, detail}]), where it has one. */
function diagnosisKinds(f: CaseFailure): string[] {
  const d = (f as { diagnosis?: unknown }).diagnosis;
  return Array.isArray(d) ? d.map((e) => (e as { kind?: unknown })?.kind).filter((k): k is string => typeof k === 'string') : [];
}

export function failureMatches(c: FailureCondition, f: CaseFailure): boolean {
  if (c.reason && !c.reason.test(f.message)) return false;
  if (c.diagnosis !== undefined) {
    const pattern = c.diagnosis;
    if (!diagnosisKinds(f).some((k) => globMatch(pattern, k))) return false;
  }
  return true;
}

/**
 * The pattern without a leading or trailing `.*` (or `.*?`): a search finds a match with them
 * exactly where it finds one without, but `.*FP8.*` tries every start and scans to the end
 * from each: quadratic in a message that holds a loader's 64 KiB stderr tail.
 */
export function unpadded(source: string): string {
  let s = source.replace(/^\.\*\??(?![*+?{])/, '');
  const tail = /\.\*\??$/.exec(s);
  // Not an escaped dot (an odd run of backslashes before it), and not one a quantifier follows.
  if (tail && (/\\*$/.exec(s.slice(0, tail.index))![0].length % 2 === 0)) s = s.slice(0, tail.index);
  return s;
}

function parseCondition(fields: readonly string[], line: number, file: string | undefined): FailureCondition | undefined {
  if (fields.length === 0) return undefined;
  const c: FailureCondition = {};
  for (const f of fields) {
    const m = /^(reason|diagnosis)=(.+)$/.exec(f);
    if (!m) throw new ExpectationsError(`line ${line}: unknown condition`, { file, expected: 'reason=/REGEX/ or diagnosis=KIND', found: f });
    if (m[1] === 'diagnosis') {
      // A kind the diagnosis never gives (a typo, a guessed name) would match nothing, silently.
      if (!DIAGNOSIS_KINDS.some((k) => globMatch(m[2]!, k))) throw new ExpectationsError(`line ${line}: diagnosis=${m[2]} matches no diagnosis kind`, { file, expected: DIAGNOSIS_KINDS.join(' | '), found: m[2] });
      c.diagnosis = m[2]!;
    } else {
      const r = /^\/(.*)\/([a-z]*)$/.exec(m[2]!);
      if (!r) throw new ExpectationsError(`line ${line}: reason takes /REGEX/`, { file, expected: 'reason=/REGEX/flags', found: f });
      // g and y make test() start where the last match ended: the same message would match one case and not the next.
      if (/[gy]/.test(r[2]!)) throw new ExpectationsError(`line ${line}: reason's regular expression cannot take the flags g or y (they make a match depend on the case before)`, { file, expected: 'flags among i, m, s, u', found: f });
      try {
        c.reason = new RegExp(unpadded(r[1]!), r[2]);
      } catch (e) {
        throw new ExpectationsError(`line ${line}: bad regular expression: ${(e as Error).message}`, { file, found: f });
      }
    }
  }
  return c;
}

export class Expectations {
  private readonly used = new Set<Expectation>();

  constructor(readonly entries: readonly Expectation[], readonly file?: string) {}

  static empty(): Expectations {
    return new Expectations([]);
  }

  static parse(text: string, file?: string): Expectations {
    const entries: Expectation[] = [];
    text.split(/\r?\n/).forEach((raw, index) => {
      const hash = raw.indexOf('#');
      const body = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
      const reason = hash >= 0 ? raw.slice(hash + 1).trim() : '';
      if (body === '') return;
      const fields = body.split(/\s+/);
      const line = index + 1;
      if (fields.length < 2) {
        throw new ExpectationsError(`line ${line}: expected "ID-or-pattern fail|skip [reason=/REGEX/] [diagnosis=KIND]  # reason"`, { file, found: raw });
      }
      const [patternText, kind] = fields as [string, string];
      if (kind !== 'fail' && kind !== 'skip') {
        throw new ExpectationsError(`line ${line}: unknown expectation`, { file, expected: 'fail or skip', found: kind });
      }
      const when = parseCondition(fields.slice(2), line, file);
      if (when && kind === 'skip') throw new ExpectationsError(`line ${line}: a skip cannot depend on how the case fails`, { file, expected: 'fail with reason=/diagnosis=', found: raw });
      let pattern: CasePattern;
      try {
        pattern = parseCasePattern(patternText);
      } catch (e) {
        // The pattern parser's own expected and found are the ones to show (once).
        const inner = e instanceof MoeConformanceError ? e : undefined;
        throw new ExpectationsError(`line ${line}: ${inner?.reason ?? (e as Error).message}`, { file, expected: inner?.expected ?? 'suite:test:k=v;... (with * wildcards)', found: inner?.found ?? patternText });
      }
      entries.push({ pattern, kind, reason, line, ...(when && { when }) });
    });
    return new Expectations(entries, file);
  }

  static async read(file: string): Promise<Expectations> {
    const bytes = await readBoundedFileAs(file, EXPECTATIONS_MAX_BYTES, ExpectationsError, 'cannot read expectations');
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch (e) {
      throw new ExpectationsError(`cannot read expectations: ${(e as Error).message}`, { file });
    }
    return Expectations.parse(text, file);
  }

  /** The first line without a failure condition that names this case. */
  lookup(id: CaseId): Expectation | undefined {
    const hit = this.entries.find((e) => !e.when && matchesPattern(e.pattern, id));
    if (hit) this.used.add(hit);
    return hit;
  }

  /** The first `fail` line with a condition that names this case and matches how it failed. */
  lookupFailure(id: CaseId, failure: CaseFailure): Expectation | undefined {
    const hit = this.entries.find((e) => e.when && matchesPattern(e.pattern, id) && failureMatches(e.when, failure));
    if (hit) this.used.add(hit);
    return hit;
  }

  /** Lines that matched no case looked up so far: stale entries worth deleting. */
  unused(): string[] {
    return this.entries
      .filter((e) => !this.used.has(e))
      .map((e) => `${this.file ?? 'expectations'}:${e.line}: ${formatCasePattern(e.pattern)} ${e.kind}${e.when ? ' (with a failure condition)' : ''} matched no ${e.when ? 'failure' : 'case'}`);
  }
}
