// The Python loader kit's tests (kits/python/tests/test_kit.py: standard library only; the numpy
// and torch parts run where those are installed), run with the first Python found:
// $MOE_TEST_PYTHON, .venv/bin/python, python3. A machine without Python skips them and says so
// (a fresh machine has Node and npm only; .ci/run installs python3). The pytest entry point's
// end-to-end test needs pytest: `.venv/bin/python -m pytest kits/python/tests`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

function findPython(): string | undefined {
  const candidates = [process.env.MOE_TEST_PYTHON, join(repo, '.venv', 'bin', 'python'), 'python3'].filter((c): c is string => !!c);
  for (const c of candidates) {
    if (c.includes('/') && !existsSync(c)) continue;
    const r = spawnSync(c, ['-c', 'import sys; assert sys.version_info >= (3, 9)'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  return undefined;
}

const python = findPython();
if (!python) {
  process.stderr.write('\n*** SKIPPED: the Python loader kit tests (kits/python/tests/test_kit.py): no Python ≥ 3.9 found ($MOE_TEST_PYTHON, .venv/bin/python, python3) ***\n\n');
}

describe('Python loader kit', () => {
  it.skipIf(!python)(`kits/python/tests/test_kit.py passes under ${python ?? 'no Python (skipped: none found)'}`, () => {
    const r = spawnSync(python!, ['-m', 'unittest', 'discover', '-s', join(here, 'tests'), '-p', 'test_kit.py', '-v'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toMatch(/^OK/m);
  });
});
