// `npm test` on a fresh machine: the pretest step finds Chromium and Mesa, or installs them,
// or fails naming them; it never lets the browser or WebGPU tests skip in silence.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('./system-deps.mjs', import.meta.url));
const run = (env: Record<string, string>) => spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, ...env } });

describe('system-deps (pretest)', () => {
  it('passes where Chromium and Mesa are present', () => {
    // The tests after it need both; here they are (installed by this very step in CI).
    expect(run({}).status).toBe(0);
  });

  it('without Chromium and without a way to install it, fails naming the package and the command', () => {
    const r = run({ CHROMIUM_PATH: '/nonexistent/chromium', MOE_NO_APT: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('npm test needs chromium');
    expect(r.stderr).toMatch(/apt-get install -y --no-install-recommends chromium/);
    expect(r.stderr).toContain('CHROMIUM_PATH');
  });
});
