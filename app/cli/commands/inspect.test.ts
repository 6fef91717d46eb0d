import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { capture } from '../test/capture.js';
import { run } from './inspect.js';

const GOLDEN = new URL('../../../golden/hf/mixtral-f32/original', import.meta.url).pathname;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inspect-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('lists a .safetensors file beside the index that the index does not name as ignored, and only then', async () => {
  const plain = await capture(run, [GOLDEN]);
  expect(plain.code).toBe(0);
  expect(plain.out).not.toContain('ignored:');
  const m = join(dir, 'consolidated');
  await cp(GOLDEN, m, { recursive: true });
  await writeFile(join(m, 'consolidated.safetensors'), Uint8Array.from([1, 2, 3]));
  const r = await capture(run, [m]);
  expect(r.code).toBe(0);
  expect(r.out).toContain('ignored:    consolidated.safetensors (not in the index)\n');
  expect(r.out.replace(m, GOLDEN)).toBe(plain.out.replace(/(files:[^\n]*\n)/, '$1ignored:    consolidated.safetensors (not in the index)\n'));
});
