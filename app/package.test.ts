// The package as a backend implementer gets it: packed, installed into a fresh project with
// only vitest (and typescript to type-check), a consumer suite type-checked under strict
// TypeScript without @types/node, and run: the reference passes, a loader with swapped gate
// and up halves fails naming w13 with a replay line that re-runs exactly that case as
// printed, and a loader limited by its capabilities shows what it left out as skipped.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../', import.meta.url).pathname;
const CONSUMER = new URL('./test/consumer/', import.meta.url).pathname;

interface Ran {
  code: number;
  out: string;
}
const sh = (line: string, cwd: string): Promise<Ran> =>
  promisify(execFile)('/bin/sh', ['-c', `${line} 2>&1`], { cwd, maxBuffer: 1 << 26, env: { ...process.env, NODE_V8_COVERAGE: '', FORCE_COLOR: '0', NO_COLOR: '1' } }).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );

async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await sizeOf(p);
    else if (e.isFile()) total += (await stat(p)).size;
  }
  return total;
}

let dir: string;
let project: string;
let run: Ran;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-package-'));
  const packed = await sh(`npm pack --silent --pack-destination ${dir}`, ROOT);
  expect(packed.code, packed.out).toBe(0);
  const tarball = join(dir, packed.out.trim().split('\n').at(-1)!);
  project = join(dir, 'consumer');
  await cp(CONSUMER, project, { recursive: true });
  const vitest = (JSON.parse(await readFile(join(ROOT, 'node_modules/vitest/package.json'), 'utf8')) as { version: string }).version;
  const installed = await sh(`npm install --no-audit --no-fund --prefer-offline ${tarball} vitest@${vitest} typescript@7.0.2`, project);
  expect(installed.code, installed.out).toBe(0);
  expect(installed.out).not.toMatch(/prepare|install script/i);
  // Verbose: skipped tests (what a limited loader did not declare) are listed by name.
  run = await sh('npx vitest run --reporter=verbose', project);
}, 600_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the packed package in a fresh project', () => {
  it('type-checks under strict TypeScript with only the package and vitest', async () => {
    const tsc = await sh('npx tsc -p tsconfig.json', project);
    expect(tsc.out).toBe('');
    expect(tsc.code).toBe(0);
  });

  it('a misspelt model type in capabilities fails to compile, naming it', async () => {
    await writeFile(join(project, 'typo.ts'), "import { referenceLoader } from 'moe-conformance';\nimport { defineMoeConformanceSuite } from 'moe-conformance/vitest';\ndefineMoeConformanceSuite({ name: 'typo', load: referenceLoader, capabilities: { modelTypes: ['mixtrall'] } });\n");
    await writeFile(join(project, 'tsconfig.typo.json'), JSON.stringify({ extends: './tsconfig.json', include: ['typo.ts'] }));
    const tsc = await sh('npx tsc -p tsconfig.typo.json', project);
    expect(tsc.code).not.toBe(0);
    expect(tsc.out).toContain('"mixtrall"');
  });

  // The bound: the harness with vitest, and the f32 golden fixtures of all 62 model types (37 MB); measured 81.6 MiB.
  it('installs light: no GPU binaries, node_modules without typescript within 90 MiB', async () => {
    const modules = join(project, 'node_modules');
    const names = await readdir(modules);
    expect(names).not.toContain('webgpu');
    expect(names).not.toContain('gpu.js');
    const typescript = (await sizeOf(join(modules, 'typescript'))) + (await sizeOf(join(modules, '@typescript')).catch(() => 0));
    expect((await sizeOf(modules)) - typescript).toBeLessThan(90 * 2 ** 20);
  });

  it('the reference passes; the swapped loader fails naming w13, once per failing property', () => {
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/✓ test\/reference\.test\.ts/);
    const swapped = run.out.slice(run.out.indexOf('FAIL '));
    expect(swapped).toContain('layers.0.experts.w13');
    expect(swapped).toMatch(/case moe:load:model=mixtral;/);
    const failed = Number(/Failed Tests (\d+)/.exec(run.out)?.[1] ?? 0);
    expect(failed).toBeGreaterThan(0);
    // One replay line per failing property (the verbose reporter may print an error twice).
    expect(new Set(run.out.match(/replay: MOE_CASE=.*$/gm) ?? []).size).toBe(failed);
  });

  it('the printed replay line runs exactly that case', async () => {
    const line = /replay: (MOE_CASE=.+)$/m.exec(run.out)?.[1];
    expect(line, run.out).toBeDefined();
    const again = await sh(line!, project);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/Tests\s+1 failed/);
    expect(again.out).toContain('layers.0.experts.w13');
  });

  it('a limited loader shows what it did not declare as skipped, with the reason', () => {
    const limited = run.out.slice(run.out.indexOf('test/limited.test.ts'));
    expect(limited).toMatch(/skip \(not declared: model type qwen3_moe/);
    expect(limited).toMatch(/skip \(not declared: layout original/);
  });
});
