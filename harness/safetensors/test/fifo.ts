// FIFOs for tests of paths that must not block on open. `mkfifo` makes them; `release`
// opens each one's write end without blocking, so that an open(2) for reading stuck on one
// (the bug these tests catch) returns and the test run can end.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';

const made: string[] = [];

/** A FIFO at `path` (made with mkfifo). */
export function mkfifo(path: string): string {
  execFileSync('mkfifo', [path]);
  made.push(path);
  return path;
}

/** Unblocks any reader stuck opening a FIFO made here (call in afterEach/afterAll). */
export function releaseFifos(): void {
  for (const path of made) {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader is waiting; ENOENT: removed already.
    }
  }
}
