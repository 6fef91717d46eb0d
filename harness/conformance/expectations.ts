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
import { MoeConformanceError } from '../errors.js';
import { readBoundedFile } from '../safetensors/bounded-read.js';
import { formatCasePattern, matchesPattern, parseCasePattern, type CaseId, type CasePattern } from './case-id.js';

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
      if (fields.length !== 2) {
        throw new ExpectationsError(`line ${line}: expected "ID-or-pattern fail|skip  # reason"`, { file, found: raw });
      }
      const [patternText, kind] = fields as [string, string];
      if (kind !== 'fail' && kind !== 'skip') {
        throw new ExpectationsError(`line ${line}: unknown expectation`, { file, expected: 'fail or skip', found: kind });
      }
      let pattern: CasePattern;
      try {
        pattern = parseCasePattern(patternText);
      } catch (e) {
        throw new ExpectationsError(`line ${line}: ${(e as Error).message}`, { file, expected: 'suite:test:k=v;... (with * wildcards)', found: patternText });
      }
      entries.push({ pattern, kind, reason, line });
    });
    return new Expectations(entries, file);
  }

  static async read(file: string): Promise<Expectations> {
    let text: string;
    try {
      text = utf8.decode(await readBoundedFile(file, EXPECTATIONS_MAX_BYTES));
    } catch (e) {
      throw new ExpectationsError(`cannot read expectations: ${(e as Error).message}`, { file });
    }
    return Expectations.parse(text, file);
  }

  lookup(id: CaseId): Expectation | undefined {
    const hit = this.entries.find((e) => matchesPattern(e.pattern, id));
    if (hit) this.used.add(hit);
    return hit;
  }

  /** Lines that matched no case looked up so far: stale entries worth deleting. */
  unused(): string[] {
    return this.entries
      .filter((e) => !this.used.has(e))
      .map((e) => `${this.file ?? 'expectations'}:${e.line}: ${formatCasePattern(e.pattern)} ${e.kind} matched no case`);
  }
}
