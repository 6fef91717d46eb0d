// Shared argument handling for the CLI commands: node's parseArgs, with usage errors
// turned into exit code 2 and a message instead of a stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ReportOptionError, takeReportOptions } from '../reporters/files.js';
import { findBackend, UnknownBackend } from '../../kernels/backends.js';
import { MoeConformanceError } from '../../harness/errors.js';

type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: boolean; strict: true }>>;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<O extends Options>(argv: string[], options: O, allowPositionals = false): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A non-negative integer option, or a usage error naming the option. */
export function intOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} takes a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** A comma-separated list option (`--tp 1,2,4`), or the fallback. */
export function listOption(value: string | undefined, fallback: string[]): string[] {
  if (value === undefined) return fallback;
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** `--report` pairs, with a malformed one as a usage error (exit 2). */
export function reportOptions(argv: string[]): ReturnType<typeof takeReportOptions> {
  try {
    return takeReportOptions(argv);
  } catch (e) {
    if (e instanceof ReportOptionError) throw new UsageError(e.message);
    throw e;
  }
}

/** Single-quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=,+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Kernel backend names (or aliases), each checked before any backend starts: an unknown one is a usage error. */
export function backendOptions(names: string[]): string[] {
  for (const name of names) {
    try {
      findBackend(name);
    } catch (e) {
      if (e instanceof UnknownBackend) throw new UsageError(e.message);
      throw e;
    }
  }
  return names;
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
