// Progress while cases run: a bar redrawn in place on a terminal, plain periodic lines
// ("[ 120/400]  30 % ...") in logs and CI, where carriage returns only make noise.
import { countStatuses, type CaseResult } from '../harness/conformance/results.js';
import type { ProgressSink } from './runner.js';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function createProgress(stream: ProgressStream, opts: { intervalMs?: number; now?: () => number } = {}): ProgressSink {
  const now = opts.now ?? (() => Date.now());
  const intervalMs = opts.intervalMs ?? (stream.isTTY ? 100 : 5000);
  const done: CaseResult[] = [];
  let total = 0;
  let last = -Infinity;
  let lastTenth = 0;

  const line = (): string => {
    const c = countStatuses(done);
    const width = String(total).length;
    const pct = total === 0 ? 100 : Math.floor((100 * done.length) / total);
    const bad = c.fail + c['unexpected-pass'];
    return `[${String(done.length).padStart(width)}/${total}] ${String(pct).padStart(3)} % pass ${c.pass + c.warn + c.xfail} fail ${bad} skip ${c.skip}${c.inconclusive ? ` inconclusive ${c.inconclusive}` : ''}`;
  };
  const draw = (force: boolean) => {
    const t = now();
    if (stream.isTTY) {
      if (!force && t - last < intervalMs) return;
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 60));
      const filled = total === 0 ? width : Math.round((width * done.length) / total);
      stream.write(`\r${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${line()}\x1b[K`);
    } else {
      // A line every interval, and at every tenth of the way, so short runs still show some.
      const tenth = total === 0 ? 10 : Math.floor((10 * done.length) / total);
      if (!force && t - last < intervalMs && tenth === lastTenth) return;
      lastTenth = tenth;
      stream.write(`${line()}\n`);
    }
    last = t;
  };

  return {
    start(n) {
      total = n;
      draw(true);
    },
    done(result) {
      done.push(result);
      draw(done.length === total);
    },
    finish() {
      if (stream.isTTY) stream.write('\n');
    },
  };
}
