// The check and run commands in process, against real loader commands: the reference
// (`moe-conformance load`, through tsx) and the fake loaders of the conformance tests.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../args.js';
import { parseResults } from '../../reporters/json.js';
import { run as check } from './check.js';
import { run as runAll } from './run.js';
import { formatCaseId, parseCaseId } from '../../../harness/conformance/case-id.js';
import { specIdText } from '../../../properties/spec.js';
import { defaultCaseCount, sampleSpecs } from '../../../properties/suite.js';

const fakes = fileURLToPath(new URL('../../../harness/protocol/test/fake-loaders/', import.meta.url));
const fake = (name: string) => `${process.execPath} ${join(fakes, name)}`;

let dir: string;
let out = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-check-cmd-'));
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

const LOAD_ID = 'moe:load:model=qwen2_moe;layout=fused;dtype=bf16;e=11;h=8;i=4;is=6;k=2;g=1;tg=1;layers=1;shards=scatter-2;tp=2;ep=1;placement=linear';
const REFUSE_ID = 'moe:refuse:model=mixtral;layout=original;dtype=f32;e=3;h=4;i=2;is=0;k=1;g=1;tg=1;layers=1;shards=single;broken=missing-expert';
const GOLDEN_ID = 'moe:golden:fixture=mixtral-f32;layout=fused;tp=1;ep=1;placement=linear';

describe('check', () => {
  it('passes the reference loader command on replayed cases, and writes every report', async () => {
    out = '';
    const json = join(dir, 'ref.json');
    const code = await check(['--loader', 'moe-conformance load', '--case', LOAD_ID, '--case', REFUSE_ID, '--case', GOLDEN_ID, '--report', 'json', json, '--report', 'junit', join(dir, 'ref.xml'), '--report', 'html', join(dir, 'ref.html')]);
    expect(code).toBe(0);
    const results = parseResults(await readFile(json, 'utf8'));
    expect(results.map((r) => [r.id, r.status]).sort()).toEqual([[GOLDEN_ID, 'pass'], [LOAD_ID, 'pass'], [REFUSE_ID, 'pass']]);
    // Run from the sources in a clone: the replay names this CLI so that it runs as printed (see main.test.ts).
    expect(results.find((r) => r.id === LOAD_ID)!.replay).toBe(`node --import tsx app/cli/main.ts check --loader 'moe-conformance load' --case '${LOAD_ID}'`);
    expect(await readFile(join(dir, 'ref.xml'), 'utf8')).toMatch(/<testsuites name="moe-conformance" tests="3" failures="0"/);
    expect(await readFile(join(dir, 'ref.html'), 'utf8')).toContain('<table id="summary">');
    expect(out).toMatch(/3 cases: 3 passed.* — OK/);
  });

  it('fails a loader that writes garbage, keeps the failing checkpoint, and exits 1', async () => {
    const keep = join(dir, 'kept');
    const json = join(dir, 'garbage.json');
    const goldenRoot = fileURLToPath(new URL('../../../golden/hf', import.meta.url));
    const code = await check(['--loader', fake('garbage.mjs'), '--cases', '3', '--model-types', 'mixtral', '--dtypes', 'f32', '--layouts', 'fused', '--tp', '1', '--ep', '1', '--golden', goldenRoot, '--keep-failures', keep, '--report', 'json', json]);
    expect(code).toBe(1);
    const results = parseResults(await readFile(json, 'utf8'));
    // Only the mixtral-f32 fixture, fused, at its allowed splits.
    const goldenIds = results.filter((r) => r.id.startsWith('moe:golden:')).map((r) => r.id);
    expect(goldenIds.length).toBeGreaterThan(0);
    expect(goldenIds.every((id) => id.startsWith('moe:golden:fixture=mixtral-f32;layout=fused;'))).toBe(true);
    expect(results.find((r) => r.id.startsWith('moe:golden:'))!.replay).toContain(`--golden ${goldenRoot}`);
    const loads = results.filter((r) => r.id.startsWith('moe:load:') || r.id.startsWith('moe:layout:'));
    for (const r of loads) {
      expect(r.status).toBe('fail');
      expect(r.failure!.message).toMatch(/LoaderOutputInvalid: loader output is not valid safetensors/);
      expect(r.failure!.diagnosis).toEqual([{ tensor: '', kind: 'loader-crashed', detail: 'LoaderOutputInvalid on a valid checkpoint and request' }]);
    }
    const kept = await readdir(keep);
    expect(kept.length).toBe(results.filter((r) => r.status === 'fail' && !r.id.startsWith('moe:golden:')).length);
    expect(await readdir(join(keep, kept[0]!))).toEqual(expect.arrayContaining(['checkpoint-fused', 'reason.txt']));
    // The failure points at the kept copy, which still exists after the run.
    const failed = results.find((r) => r.status === 'fail' && r.id.startsWith('moe:load:'))!;
    expect(failed.failure!.kept).toBe(join(keep, kept[0]!));
    expect(failed.failure!.rank).toMatch(/^TP rank 0\/1, EP rank 0\/1/);
  });

  it('tells from the terminal alone what a wrong loader did: its declared name, the failures by kind, each led by its diagnosis', async () => {
    out = '';
    const json = join(dir, 'swapped.json');
    const code = await check(['--loader', fake('swapped.mjs'), '--case', LOAD_ID, '--seed', '7', '--report', 'json', json]);
    expect(code).toBe(1);
    const lines = out.split('\n');
    expect(lines).toContain(`loader:   ${fake('swapped.mjs')}`);
    expect(lines).toContain('declared: swapped-demo 0.0.1');
    expect(lines).toContain('seed:     7');
    expect(lines).toContain('1 failed: 1 gate-up-swapped');
    const at = lines.indexOf(`FAIL ${LOAD_ID}`);
    expect(lines[at + 1]).toBe('  [gate-up-swapped] layers.0.experts.w13: experts 0–10: gate and up halves swapped (up rows first)');
    const result = parseResults(await readFile(json, 'utf8'))[0]!;
    expect(result.failure!.diagnosis).toEqual([{ tensor: 'layers.0.experts.w13', kind: 'gate-up-swapped', detail: 'experts 0–10: gate and up halves swapped (up rows first)' }]);
    expect(JSON.parse(await readFile(json, 'utf8')).run).toMatchObject({ loaderName: 'swapped-demo', loaderVersion: '0.0.1', seed: 7 });
  });

  it('applies expectations, runs shards and merges them', async () => {
    const expectations = join(dir, 'expect.txt');
    await writeFile(expectations, 'moe:load:* fail # this loader refuses everything\nmoe:layout:* fail\nmoe:refuse:model=dbrx;* skip\n');
    const common = ['--loader', fake('refuse.mjs'), '--cases', '12', '--seed', '3', '--expectations', expectations];
    expect(await check([...common, '--shard', '1/2', '--report', 'json', join(dir, 's1.json')])).toBe(0);
    expect(await check([...common, '--shard', '2/2', '--report', 'json', join(dir, 's2.json')])).toBe(0);
    const all = join(dir, 'all.json');
    out = '';
    expect(await check(['--merge', join(dir, 's1.json'), join(dir, 's2.json'), '--report', 'json', all])).toBe(0);
    const merged = parseResults(await readFile(all, 'utf8'));
    expect(merged).toHaveLength(12);
    expect(new Set(merged.map((r) => r.status))).toEqual(new Set(merged.some((r) => r.id.startsWith('moe:refuse:model=dbrx')) ? ['xfail', 'inconclusive', 'skip'] : ['xfail', 'inconclusive']));
    expect(merged.filter((r) => /^moe:(load|layout):/.test(r.id)).every((r) => r.status === 'xfail')).toBe(true);
    // A loader that refuses everything proves nothing by refusing broken checkpoints: inconclusive, never pass.
    expect(merged.filter((r) => /^moe:(refuse|request):/.test(r.id) && r.status !== 'skip').every((r) => r.status === 'inconclusive')).toBe(true);
    expect(out).toMatch(/12 cases: /);
    expect(JSON.parse(await readFile(all, 'utf8')).run.declared).toEqual({ name: fake('refuse.mjs'), mode: 'command' });
  });

  it('runs only the sampled cases a --case pattern matches', async () => {
    const json = join(dir, 'pattern.json');
    expect(await check(['--loader', fake('refuse.mjs'), '--cases', '30', '--case', 'moe:refuse:*', '--case', 'moe:request:model=mixtral;*', '--report', 'json', json])).toBe(0);
    const results = parseResults(await readFile(json, 'utf8'));
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((r) => r.id.startsWith('moe:refuse:') || r.id.startsWith('moe:request:model=mixtral;'))).toBe(true);
  });

  it('--forms reaches the cases: the reference passes forms it satisfies as is, and fails w31 (it writes [gate; up])', async () => {
    const json = join(dir, 'forms.json');
    // The reference's placement is an EPLB placement without redundancy, and Ir = 2 needs no padding to a multiple of 2.
    expect(await check(['--loader', 'moe-conformance load', '--forms', 'eplb,pad-ir-2', '--case', LOAD_ID, '--report', 'json', json])).toBe(0);
    // A --timeout other than the default is replayed too: a replayed hang is cut where it was.
    expect(await check(['--loader', 'moe-conformance load', '--forms', 'w31', '--timeout', '45', '--case', LOAD_ID, '--case', GOLDEN_ID, '--report', 'json', json])).toBe(1);
    const results = parseResults(await readFile(json, 'utf8'));
    for (const r of results) {
      expect(r.status).toBe('fail');
      expect(r.failure?.message).toMatch(/\(declared forms w31 mapped to the canonical form\): tensor layers\.\d+\.experts\.w13 differs/);
      expect(r.replay).toContain(`check --loader 'moe-conformance load' --forms w31 --timeout 45 --case`);
    }
    // Every report shows the declared forms: JSON keeps the declaration, the terminal lists it.
    expect(JSON.parse(await readFile(json, 'utf8')).run.declared).toEqual({ name: 'moe-conformance load', mode: 'command', capabilities: { forms: ['w31'] } });
    expect(out).toMatch(/forms: w31\n/);
    // A capabilities file's forms are declared forms too, and --forms adds to them.
    const file = join(dir, 'forms-capabilities.json');
    await writeFile(file, JSON.stringify({ modelTypes: ['qwen2_moe', 'mixtral'], forms: ['eplb'] }));
    expect(await check(['--loader', 'moe-conformance load', '--capabilities', file, '--forms', 'pad-ir-2', '--case', LOAD_ID, '--report', 'json', json])).toBe(0);
    expect(JSON.parse(await readFile(json, 'utf8')).run.declared.capabilities.forms).toEqual(['pad-ir-2', 'eplb']);
    expect(parseResults(await readFile(json, 'utf8'))[0]!.replay).toContain(`check --loader 'moe-conformance load' --capabilities ${file} --forms pad-ir-2 --case`);
    await writeFile(file, JSON.stringify({ forms: ['w13'] }));
    await expect(check(['--loader', 'moe-conformance load', '--capabilities', file, '--case', LOAD_ID])).rejects.toThrow(/capabilities\.forms: unknown engine form/);
  });

  it('a worker declares its forms in its handshake: the same engine loader passes declared and fails undeclared', async () => {
    const worker = `${process.execPath} --import tsx ${fileURLToPath(new URL('../../../properties/mutants/test/form-worker.ts', import.meta.url))}`;
    const json = join(dir, 'forms-worker.json');
    process.env.FORM_LOADER = 'shared-replicated';
    try {
      expect(await check(['--loader', worker, '--worker', '--case', LOAD_ID, '--report', 'json', json])).toBe(0);
      expect(JSON.parse(await readFile(json, 'utf8')).run.declared).toMatchObject({ name: 'form loader shared-replicated', mode: 'worker', capabilities: { forms: ['shared-replicated'] } });
      process.env.FORM_DECLARE = 'no';
      expect(await check(['--loader', worker, '--worker', '--case', LOAD_ID, '--report', 'json', json])).toBe(1);
      expect(parseResults(await readFile(json, 'utf8'))[0]!.failure?.message).toMatch(/shared\.w13 has shape \[12, 8\], expected \[6, 8\]/);
    } finally {
      delete process.env.FORM_LOADER;
      delete process.env.FORM_DECLARE;
    }
  });

  it('refuses bad usage', async () => {
    await expect(check(['--loader', 'x', '--forms', 'w13'])).rejects.toThrow(/--forms: unknown engine form \(expected transposed \| pad-ir-N/);
    await expect(check(['--loader', 'x', '--forms', 'shared-replicated,shared-expert-slots'])).rejects.toThrow(/exclude each other/);
    await expect(check(['--loader', 'x', '--worker', '--forms', 'w31'])).rejects.toThrow(/--forms is for command loaders/);
    await expect(check([])).rejects.toThrow(UsageError);
    await expect(check(['--loader', 'x', '--report', 'pdf', 'a.pdf'])).rejects.toThrow(/--report takes FORMAT FILE/);
    await expect(check(['--loader', 'x', '--model-types', 'gpt5'])).rejects.toThrow(/unknown "gpt5"/);
    await expect(check(['--loader', 'x', '--golden'])).rejects.toThrow(/takes at least one DIR/);
    await expect(check(['--loader', 'x', '--timeout', '0'])).rejects.toThrow(UsageError);
    await expect(check(['--loader', 'x', '--frobnicate'])).rejects.toThrow(UsageError);
    // A case ID edited by hand into an impossible case is the user's mistake, not the loader's: refused before any loader runs.
    const edited = (from: string, to: string) => LOAD_ID.replace(from, to);
    await expect(check(['--loader', 'x', '--case', edited('tp=2', 'tp=3')])).rejects.toThrow(/--case .*TP 3 × EP 1 is not a request every loader must serve.*I % T == 0 \(I = 4\), found T = 3/);
    await expect(check(['--loader', 'x', '--case', edited('tp=2;ep=1', 'tp=1;ep=12')])).rejects.toThrow(/more EP ranks than experts \(expected epSize <= E = 11, found 12\)/);
    await expect(check(['--loader', 'x', '--case', edited('model=qwen2_moe', 'model=nosuch')])).rejects.toThrow(/no nosuch checkpoint can be made with these sizes: cannot build a config for this model type/);
    await expect(check(['--loader', 'x', '--case', edited(';placement=linear', '')])).rejects.toThrow(UsageError);
    expect(await check(['--help'])).toBe(0);
  });
});

const fakeWorker = `${process.execPath} ${fileURLToPath(new URL('../../../harness/protocol/test/fake-workers/worker.mjs', import.meta.url))}`;

describe('check --worker and capabilities', () => {
  it('passes the reference loader as a worker on the same cases as the command, declaring its name and version', async () => {
    out = '';
    const json = join(dir, 'worker.json');
    const xml = join(dir, 'worker.xml');
    const code = await check(['--loader', 'moe-conformance load', '--worker', '--case', LOAD_ID, '--case', REFUSE_ID, '--case', GOLDEN_ID, '--report', 'json', json, '--report', 'junit', xml]);
    expect(code).toBe(0);
    const file = JSON.parse(await readFile(json, 'utf8'));
    expect(file.run.declared).toEqual({ name: 'moe-conformance load', version: '1', mode: 'worker' });
    expect(parseResults(JSON.stringify(file)).map((r) => r.status)).toEqual(['pass', 'pass', 'pass']);
    expect(file.results.find((r: { id: string }) => r.id === LOAD_ID).replay).toBe(`node --import tsx app/cli/main.ts check --loader 'moe-conformance load' --worker --case '${LOAD_ID}'`);
    expect(await readFile(xml, 'utf8')).toContain('<property name="loader.mode" value="worker"/>');
    expect(out).toMatch(/declared: moe-conformance load 1 \(worker\)/);
  });

  it('skips cases outside a command loader\'s --capabilities as not declared, in every report', async () => {
    const caps = join(dir, 'caps.json');
    await writeFile(caps, JSON.stringify({ modelTypes: ['mixtral'], maxTp: 1, forms: ['w31'] }));
    const [json, xml, html] = ['caps.json.out', 'caps.xml', 'caps.html'].map((f) => join(dir, f)) as [string, string, string];
    out = '';
    const code = await check(['--loader', 'moe-conformance load', '--capabilities', caps, '--case', LOAD_ID, '--case', REFUSE_ID, '--report', 'json', json, '--report', 'junit', xml, '--report', 'html', html]);
    expect(code).toBe(0);
    const file = JSON.parse(await readFile(json, 'utf8'));
    expect(file.run.declared).toEqual({ name: 'moe-conformance load', mode: 'command', capabilities: { modelTypes: ['mixtral'], maxTp: 1, forms: ['w31'] } });
    const byId = new Map(parseResults(await readFile(json, 'utf8')).map((r) => [r.id, r]));
    expect(byId.get(REFUSE_ID)!.status).toBe('pass');
    expect(byId.get(LOAD_ID)).toMatchObject({ status: 'skip', note: 'not declared: model type qwen2_moe (declared: mixtral)' });
    expect(out).toContain(`skip (not declared): 1 cases\n  1 × model type qwen2_moe (declared: mixtral)\n    ${LOAD_ID}`);
    expect(out).toMatch(/2 cases: 1 passed, 0 warned, 0 failed, 1 skipped \(1 not declared\)/);
    expect(out).toContain('forms: w31');
    const junit = await readFile(xml, 'utf8');
    expect(junit).toContain('<skipped message="not declared: model type qwen2_moe (declared: mixtral)"/>');
    expect(junit).toContain('<property name="loader.capabilities" value="model types mixtral; max TP 1; forms w31"/>');
    const page = await readFile(html, 'utf8');
    expect(page).toContain('<h2>Skipped, not declared (1)</h2>');
    expect(page).toContain('1 × model type qwen2_moe (declared: mixtral)');
    await writeFile(caps, JSON.stringify({ modelTypes: 'mixtral' }));
    await expect(check(['--loader', 'x', '--capabilities', caps])).rejects.toThrow(/capabilities.modelTypes must be a list of strings/);
    await expect(check(['--loader', 'x', '--worker', '--capabilities', caps])).rejects.toThrow(UsageError);
  });

  it('asks a worker for every rank of a TP 2 or EP 2 case in one request, timed by the ranks it lists (spec §7.4)', async () => {
    const log = join(dir, 'requests.log');
    const tp2 = 'moe:load:model=mixtral;layout=fused;dtype=f32;e=4;h=16;i=8;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=2;ep=1;placement=linear';
    const ep2 = 'moe:load:model=mixtral;layout=fused;dtype=f32;e=4;h=16;i=8;is=0;k=2;g=1;tg=1;layers=1;shards=single;tp=1;ep=2;placement=linear';
    Object.assign(process.env, { FAKE_REQUEST_LOG: log });
    try {
      // The fake's tensors are not canonical: each case fails after its first request.
      for (const id of [tp2, ep2]) expect(await check(['--loader', fakeWorker, '--worker', '--jobs', '1', '--case', id])).toBe(1);
      expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual(['tp0/2 ep0/1 + tp1/2 ep0/1', 'tp0/1 ep0/2 + tp0/1 ep1/2']);
      // A hanging worker is given --timeout per rank listed: 2 s for the two ranks of TP 2.
      process.env.FAKE_WORKER = 'hang';
      const json = join(dir, 'hang.json');
      expect(await check(['--loader', fakeWorker, '--worker', '--jobs', '1', '--timeout', '1', '--case', tp2, '--report', 'json', json])).toBe(1);
      expect(parseResults(await readFile(json, 'utf8'))[0]!.failure!.message).toMatch(/^WorkerTimedOut: worker gave no answer to request 1 within 2000 ms/);
    } finally {
      delete process.env.FAKE_REQUEST_LOG;
      delete process.env.FAKE_WORKER;
    }
  });

  it('a worker whose handshake declares an unknown capability is started once: every case fails with that error, said once up front', async () => {
    const starts = join(dir, 'badcap-starts.log');
    const json = join(dir, 'badcap.json');
    Object.assign(process.env, { FAKE_CAPABILITIES: JSON.stringify({ modelTypes: ['mixtral'], dtype: ['bf16'] }), FAKE_START_LOG: starts });
    const said = vi.mocked(process.stderr.write);
    said.mockClear();
    try {
      expect(await check(['--loader', fakeWorker, '--worker', '--cases', '4', '--jobs', '2', '--report', 'json', json])).toBe(1);
    } finally {
      delete process.env.FAKE_CAPABILITIES;
      delete process.env.FAKE_START_LOG;
    }
    const results = parseResults(await readFile(json, 'utf8'));
    expect(results).toHaveLength(4);
    for (const r of results) {
      expect(r.status).toBe('fail');
      expect(r.failure!.message).toMatch(/WorkerHandshakeError: worker handshake: unknown capabilities field "dtype" \(expected modelTypes \| layouts \| dtypes \| quantization \| maxTp \| maxEp \| placements \| forms, found dtype\)\n/);
    }
    expect((await readFile(starts, 'utf8')).trim().split('\n')).toHaveLength(1);
    const warnings = said.mock.calls.map(([s]) => String(s)).filter((s) => s.includes('handshake'));
    expect(warnings).toEqual([expect.stringMatching(/^error: the worker's handshake is invalid; no worker is started again and every case fails with it: WorkerHandshakeError: worker handshake: unknown capabilities field "dtype"/)]);
  });

  it('a crashing worker fails each case with a typed error and the run goes on', async () => {
    const json = join(dir, 'crash.json');
    const code = await check(['--loader', fakeWorker, '--worker', '--cases', '4', '--jobs', '2', '--report', 'json', json]);
    expect(code).toBe(1);
    const results = parseResults(await readFile(json, 'utf8'));
    expect(results).toHaveLength(4);
    // The fake writes tensors that are not canonical, so loads fail on content; none of them stops the run.
    for (const r of results) expect(['fail', 'pass', 'inconclusive']).toContain(r.status);
    const crashing = join(dir, 'crashing.json');
    process.env.FAKE_WORKER = 'crash';
    try {
      expect(await check(['--loader', fakeWorker, '--worker', '--cases', '3', '--report', 'json', crashing])).toBe(1);
    } finally {
      delete process.env.FAKE_WORKER;
    }
    // A worker that ignores the end of its input is killed when the run ends: nothing is left behind.
    const pidFile = join(dir, 'worker.pid');
    Object.assign(process.env, { FAKE_WORKER: 'ignore-eof', FAKE_PID_FILE: pidFile });
    try {
      await check(['--loader', fakeWorker, '--worker', '--cases', '2', '--jobs', '1']);
    } finally {
      delete process.env.FAKE_WORKER;
      delete process.env.FAKE_PID_FILE;
    }
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
    const crashed = parseResults(await readFile(crashing, 'utf8'));
    expect(crashed).toHaveLength(3);
    for (const r of crashed) {
      expect(r.status).toBe('fail');
      expect(r.failure!.message).toMatch(/^WorkerCrashed: worker killed by SIGSEGV|must be refused with a non-zero exit and a reason, but the loader failed otherwise: WorkerCrashed/);
    }
  });
});

describe('check: quantized cases', () => {
  const listed = async (args: string[]) => {
    out = '';
    expect(await check(['--list', ...args])).toBe(0);
    return out.split('\n').filter(Boolean);
  };
  const dtypeOf = (id: string) => /;dtype=([^;]+);/.exec(id)![1];

  it('a loader declaring fp8 in its capabilities file is given fp8 cases: the reference passes them, one that drops a scale fails them', async () => {
    const caps = join(dir, 'caps-fp8.json');
    await writeFile(caps, JSON.stringify({ dtypes: ['fp8'], modelTypes: ['mixtral'], maxTp: 2, maxEp: 2 }));
    const json = join(dir, 'fp8.json');
    expect(await check(['--loader', 'moe-conformance load', '--capabilities', caps, '--cases', '2', '--report', 'json', json])).toBe(0);
    const results = parseResults(await readFile(json, 'utf8'));
    const fp8 = results.filter((r) => dtypeOf(r.id) === 'fp8');
    expect(fp8.length).toBeGreaterThanOrEqual(4);
    expect(fp8.every((r) => r.status === 'pass')).toBe(true);
    expect(fp8.some((r) => r.id.startsWith('moe:load:') && /;tp=2;/.test(r.id))).toBe(true);
    expect(fp8.some((r) => r.id.startsWith('moe:load:') && /;ep=2;/.test(r.id))).toBe(true);
    expect(fp8.some((r) => r.id.startsWith('moe:refuse:') && r.id.endsWith(';broken=quantized-router'))).toBe(true);
    // The float cases are drawn as before, and skipped as not declared.
    expect(results.filter((r) => dtypeOf(r.id) !== 'fp8').map((r) => r.status)).toEqual(['skip', 'skip']);
    const broken = join(dir, 'fp8-drop-scale.json');
    // The fake spawns the reference per rank: its loads and its refusal are enough (a layout case fails as its loads do).
    expect(await check(['--loader', fake('drop-scale.mjs'), '--capabilities', caps, '--cases', '2', '--case', 'moe:load:*', '--case', 'moe:refuse:*', '--report', 'json', broken])).toBe(1);
    const verdicts = parseResults(await readFile(broken, 'utf8')).filter((r) => dtypeOf(r.id) === 'fp8');
    const failed = verdicts.filter((r) => r.status === 'fail');
    expect(failed.map((r) => r.id).sort()).toEqual(fp8.filter((r) => r.id.startsWith('moe:load:')).map((r) => r.id).sort());
    expect(verdicts.filter((r) => r.status !== 'fail').map((r) => [r.id.endsWith(';broken=quantized-router'), r.status])).toEqual([[true, 'pass']]);
    for (const r of failed) expect(r.failure!.diagnosis).toContainEqual(expect.objectContaining({ kind: 'missing-tensor', tensor: expect.stringMatching(/experts\.w2_scale$/) }));
  });

  it('--dtypes takes the quantized names too and draws their cases (a pattern then finds them); a loader declaring nothing keeps the float run it had', async () => {
    const fp8 = await listed(['--loader', 'x', '--dtypes', 'fp8']);
    expect(fp8.length).toBeGreaterThanOrEqual(4);
    expect(fp8.every((id) => dtypeOf(id) === 'fp8')).toBe(true);
    expect(fp8.some((id) => id.startsWith('moe:refuse:') && id.endsWith(';broken=quantized-router'))).toBe(true);
    expect(await listed(['--loader', 'x', '--dtypes', 'fp8', '--model-types', 'mixtral', '--layouts', 'fused', '--case', 'moe:load:model=mixtral;layout=fused;dtype=fp8;*'])).not.toEqual([]);
    const mixed = await listed(['--loader', 'x', '--dtypes', 'bf16,nvfp4', '--cases', '3']);
    expect(mixed.filter((id) => dtypeOf(id) === 'bf16')).toHaveLength(3);
    expect(mixed.filter((id) => dtypeOf(id) === 'nvfp4').length).toBeGreaterThanOrEqual(4);
    await expect(check(['--loader', 'x', '--dtypes', 'fp9', '--list'])).rejects.toThrow(/--dtypes: unknown "fp9"/);
    // Golden fixtures are selected by the dtype they are declared under, not by their folder name's last word.
    const quantGolden = fileURLToPath(new URL('../../../golden/hf-quant', import.meta.url));
    const awq = await listed(['--loader', 'x', '--dtypes', 'int4-awq-g32', '--model-types', 'qwen3_moe', '--golden', quantGolden, '--cases', '1']);
    expect(awq.filter((id) => id.startsWith('moe:golden:')).every((id) => id.startsWith('moe:golden:fixture=qwen3_moe-awq;'))).toBe(true);
    expect(awq.some((id) => id.startsWith('moe:golden:fixture=qwen3_moe-awq;'))).toBe(true);
    // Declaring nothing, or only float dtypes: the default run's float cases, as sampled before quantized ones were drawn.
    const floats = sampleSpecs(defaultCaseCount(42), 42).map((s) => formatCaseId(parseCaseId(specIdText(s))));
    expect(await listed(['--loader', 'x'])).toEqual(floats);
    const caps = join(dir, 'caps-float.json');
    await writeFile(caps, JSON.stringify({ dtypes: ['bf16', 'f32'], maxTp: 2 }));
    expect(await listed(['--loader', 'x', '--capabilities', caps])).toEqual(floats);
  });

  it('a worker\'s handshake comes before sampling: the quantized dtypes it declares are drawn, --list included', async () => {
    const starts = join(dir, 'fp8-worker-starts.log');
    Object.assign(process.env, { FAKE_CAPABILITIES: JSON.stringify({ dtypes: ['fp8-shared'], modelTypes: ['mixtral', 'olmoe'] }), FAKE_START_LOG: starts });
    try {
      const ids = await listed(['--loader', fakeWorker, '--worker', '--cases', '2']);
      const quantized = ids.filter((id) => dtypeOf(id) === 'fp8-shared');
      expect(quantized.length).toBeGreaterThanOrEqual(4);
      expect(quantized.every((id) => /model=(mixtral|olmoe);/.test(id))).toBe(true);
      expect(ids.length - quantized.length).toBe(2);
    } finally {
      delete process.env.FAKE_CAPABILITIES;
      delete process.env.FAKE_START_LOG;
    }
    expect((await readFile(starts, 'utf8')).trim().split('\n')).toHaveLength(1);
  });
});

describe('run', () => {
  it('runs golden and generated cases against the reference in process', async () => {
    const json = join(dir, 'run.json');
    out = '';
    const code = await runAll(['--cases', '6', '--dtypes', 'f32,f16,bf16,mxfp4', '--golden', fileURLToPath(new URL('../../../golden/hf/gpt_oss-bf16', import.meta.url)), '--report', 'json', json]);
    expect(code).toBe(0);
    const results = parseResults(await readFile(json, 'utf8'));
    expect(results.filter((r) => r.id.startsWith('moe:golden:fixture=gpt_oss-bf16;')).length).toBeGreaterThanOrEqual(4);
    const generated = results.filter((r) => !r.id.startsWith('moe:golden:'));
    // Six float cases, and the cases of the quantized dtype asked for (run draws every format by default).
    expect(generated.filter((r) => !r.id.includes(';dtype=mxfp4;'))).toHaveLength(6);
    expect(generated.filter((r) => r.id.includes(';dtype=mxfp4;')).length).toBeGreaterThanOrEqual(4);
    expect(results.every((r) => r.status === 'pass')).toBe(true);
    expect(out).toMatch(/ — OK\n$/);
    // A shard of the same run, with a skip line, holds part of the cases, and only those.
    const expectations = join(dir, 'run-expect.txt');
    await writeFile(expectations, 'moe:golden:* skip # not this time\n');
    const part = join(dir, 'run-part.json');
    expect(await runAll(['--cases', '6', '--dtypes', 'f32,f16,bf16,mxfp4', '--golden', fileURLToPath(new URL('../../../golden/hf/gpt_oss-bf16', import.meta.url)), '--shard', '1/2', '--expectations', expectations, '--report', 'json', part])).toBe(0);
    const partial = parseResults(await readFile(part, 'utf8'));
    expect(partial.length).toBeLessThan(results.length);
    expect(partial.every((r) => results.some((x) => x.id === r.id))).toBe(true);
    expect(partial.filter((r) => r.id.startsWith('moe:golden:')).every((r) => r.status === 'skip')).toBe(true);
    await expect(runAll(['--backend', 'nope'])).rejects.toThrow(UsageError);
    expect(await runAll(['--help'])).toBe(0);
  });
});
