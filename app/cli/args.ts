// Shared pieces of the CLI commands: usage errors (exit 2), how a typed harness error ends a
// command (exit 1), shell quoting, and how to name this CLI in a line a person may run.
import { realpathSync } from 'node:fs';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MoeConformanceError } from '../../harness/errors.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Single-quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=,+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * How a command fails on a typed harness error: one line on stderr naming the command,
 * exit code 1. Anything else is a bug in the harness and is rethrown.
 */
export function commandFailure(command: string, e: unknown): number {
  if (!(e instanceof MoeConformanceError)) throw e;
  process.stderr.write(`moe-conformance ${command}: ${e.name}: ${e.message}\n`);
  return 1;
}

/** The file that `moe-conformance` runs: main.ts beside this file from the sources, main.js from the build. */
function mainFile(): string {
  const here = fileURLToPath(import.meta.url);
  return join(dirname(here), here.endsWith('.ts') ? 'main.ts' : 'main.js');
}

const sameFile = (a: string, b: string): boolean => {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
};

/**
 * How to run this CLI from the current folder, as a replay line prints it so that it runs as
 * printed: `moe-conformance` where that name on the user's PATH is this CLI, `npx
 * moe-conformance` where the project's node_modules/.bin has it, else node with this CLI's
 * path. A node_modules/.bin folder on PATH does not count: npx and npm scripts put it there for
 * their own child only, so the bare name would not run in the user's shell afterwards.
 */
export function selfCommand(cwd = process.cwd(), path = process.env.PATH ?? ''): string {
  const main = mainFile();
  const onUsersPath = (d: string) => d !== '' && !/(^|[\\/])node_modules[\\/]\.bin[\\/]?$/.test(d);
  if (path.split(delimiter).some((d) => onUsersPath(d) && sameFile(join(d, 'moe-conformance'), main))) return 'moe-conformance';
  if (sameFile(join(cwd, 'node_modules', '.bin', 'moe-conformance'), main)) return 'npx moe-conformance';
  const rel = relative(cwd, main);
  const shown = rel.startsWith('..') || rel === '' ? main : rel;
  return main.endsWith('.ts') ? `node --import tsx ${shellQuote(shown)}` : `node ${shellQuote(shown)}`;
}
