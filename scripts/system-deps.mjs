#!/usr/bin/env node
// Run before `npm test`: the tests need what npm cannot install: Debian's Chromium (the HTML
// report is rendered in it), Mesa's EGL/GLES (Dawn's WebGPU adapter on a machine without a
// GPU) and python3 (the Python loader kit's own tests). Present: nothing to do. Missing, as root with
// apt-get: installs them. Otherwise: says exactly what to install and fails, so no test that
// needs them is ever skipped in silence.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PACKAGES = {
  chromium: { why: 'the HTML report test renders the report in headless Chromium', present: () => existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium') },
  python3: { why: 'the Python loader kit (kits/python) is tested with a plain python3', present: () => spawnSync('python3', ['--version']).status === 0 },
  'libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri': { why: "Dawn's WebGPU adapter on a machine without a GPU (Mesa llvmpipe behind EGL)", present: () => hasLibrary('libEGL_mesa.so.0') && hasLibrary('libGLESv2.so.2') },
};

function hasLibrary(name) {
  const r = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes(name);
}

const missing = Object.entries(PACKAGES).filter(([, p]) => !p.present());
if (missing.length === 0) process.exit(0);

const names = missing.flatMap(([n]) => n.split(' '));
const command = `apt-get update && apt-get install -y --no-install-recommends ${names.join(' ')}`;
for (const [n, p] of missing) console.error(`npm test needs ${n}: ${p.why}.`);
// MOE_NO_APT=1: report, never install (what a machine without root or apt-get gets).
const canInstall = process.env.MOE_NO_APT !== '1' && process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0;
if (!canInstall) {
  console.error(`Install them (as root: ${command}), or set CHROMIUM_PATH to a Chromium binary; then run npm test again.`);
  process.exit(1);
}
console.error(`installing them: ${command}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], { stdio: ['ignore', 'ignore', 'inherit'], env });
} catch (e) {
  console.error(`could not install them (${e.message.split('\n')[0]}); run as root: ${command}`);
  process.exit(1);
}
const still = missing.filter(([, p]) => !p.present()).map(([n]) => n);
if (still.length > 0) {
  console.error(`still missing after apt-get: ${still.join(', ')}`);
  process.exit(1);
}
