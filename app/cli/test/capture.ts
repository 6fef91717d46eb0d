// Runs a CLI command in process and collects what it wrote, so command tests can assert on
// the exit code and on stdout/stderr without spawning a process.
import { vi } from 'vitest';

export interface Captured {
  code: number;
  out: string;
  err: string;
}

export async function capture(command: (argv: string[]) => Promise<number>, argv: string[]): Promise<Captured> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await command(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}
