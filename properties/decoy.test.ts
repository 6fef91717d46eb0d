// The decoy case (spec §2): `.safetensors` files beside the index that it does not name, with
// the checkpoint's tensor names and other values. A loader that reads only what the index
// names passes; one that globs *.safetensors fails, diagnosed `unindexed-file-read`.
import fc from 'fast-check';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointDir } from '../harness/checkpoint/directory.js';
import { SafetensorsFile } from '../harness/safetensors/read.js';
import { referenceLoader } from '../harness/loader/load.js';
import { WHOLE } from '../harness/tensor.js';
import { caseArb } from './arbitraries/cases.js';
import { diffCanonical } from './diff.js';
import { checkSpec, DECOY_FILES, writeCheckpoint } from './materialize.js';
import { MUTANTS } from './mutants/catalogue.js';
import { checkCase } from './properties.js';
import { CaseSpecError, parseSpec, specIdText, specSeed, type CaseSpec } from './spec.js';
import { suiteProperties } from './suite-properties.js';

const ID = 'moe:load:model=mixtral;layout=fused;dtype=f32;e=4;h=8;i=4;is=0;k=2;g=1;tg=1;layers=1;shards=scatter-2;decoy=1;tp=2;ep=2;placement=linear';
const PLAIN = ID.replace(';decoy=1', '');
const globbing = MUTANTS.find((m) => m.name === 'safetensors-globbed')!;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'moe-decoy-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the decoy case ID', () => {
  it('prints decoy=1 after the shards and parses back; the weights are those of the case without it', () => {
    const spec = parseSpec(ID);
    expect(spec.checkpoint.decoy).toBe(true);
    expect(specIdText(spec)).toBe(ID);
    expect(parseSpec(PLAIN).checkpoint).not.toHaveProperty('decoy');
    expect(specSeed(spec)).toBe(specSeed(parseSpec(PLAIN)));
    for (const bad of [ID.replace('decoy=1', 'decoy=0'), ID.replace('shards=scatter-2;decoy=1', 'decoy=1;shards=scatter-2')]) expect(() => parseSpec(bad), bad).toThrow(CaseSpecError);
  });

  it('is a load of an indexed checkpoint: other shard plans and kinds are refused before any loader runs', () => {
    expect(() => checkSpec(parseSpec(ID))).not.toThrow();
    for (const bad of [ID.replace('scatter-2', 'single'), ID.replace('scatter-2', 'max-4096'), ID.replace('scatter-2', 'scatter-1')]) expect(() => checkSpec(parseSpec(bad)), bad).toThrow(/decoy=1 needs a load case with shards=scatter-N/);
    const refuse = 'moe:refuse:model=mixtral;layout=fused;dtype=f32;e=4;h=8;i=4;is=0;k=2;g=1;tg=1;layers=1;shards=scatter-2;decoy=1;broken=wrong-shape';
    expect(() => checkSpec(parseSpec(refuse))).toThrow(CaseSpecError);
  });

  it('is drawn by the decoy property alone, last, so that the other properties draw as before', () => {
    const props = suiteProperties({ name: 'x', load: referenceLoader });
    const last = props.at(-1)!;
    expect(last.title).toMatch(/decoy=1/);
    for (const s of fc.sample(last.arb, { seed: 42, numRuns: 50 })) {
      expect(s).toMatchObject({ kind: 'load', checkpoint: { decoy: true, shards: { kind: 'scatter' } } });
      expect(() => checkSpec(s), specIdText(s)).not.toThrow();
    }
    for (const p of props.slice(0, -1)) for (const s of fc.sample(p.arb, { seed: 42, numRuns: 20 })) expect(s.checkpoint, p.title).not.toHaveProperty('decoy');
    expect(fc.sample(caseArb(), { seed: 42, numRuns: 200 }).some((s: CaseSpec) => s.checkpoint.decoy)).toBe(false);
  });
});

describe('the decoy checkpoint', () => {
  it('holds every tensor again, other values, in files the index does not name; the reference reads the indexed shards only', async () => {
    const spec = parseSpec(ID);
    const [a, b, plain] = [join(work, 'a'), join(work, 'b'), join(work, 'plain')];
    for (const d of [a, b, plain]) await mkdir(d);
    const g = await writeCheckpoint(spec.checkpoint, specSeed(spec), a);
    expect(g.decoy?.files).toEqual(DECOY_FILES);
    const c = await CheckpointDir.open(a);
    expect(c.ignored).toEqual([...DECOY_FILES]);
    const indexed = c.tensorNames();
    await c.close();
    expect(c.files).toHaveLength(2);
    // The decoy holds the same names, with other values.
    for (const name of DECOY_FILES) {
      const f = await SafetensorsFile.open(join(a, name));
      expect([...f.tensors.keys()].sort()).toEqual(indexed);
      const shardOf = await CheckpointDir.open(a);
      let differing = 0;
      for (const t of indexed) if (Buffer.compare((await f.readTensor(t)).bytes, (await shardOf.read(t)).bytes) !== 0) differing++;
      await shardOf.close();
      await f.close();
      expect(differing).toBeGreaterThan(0);
    }
    // The same canonical tensors as the case without decoys.
    const p = parseSpec(PLAIN);
    await writeCheckpoint(p.checkpoint, specSeed(p), plain);
    expect(diffCanonical(await referenceLoader.load(plain, WHOLE), await referenceLoader.load(a, WHOLE), 'decoy vs plain')).toBeUndefined();
    // A replay of the printed ID rebuilds the very same files.
    const again = parseSpec(specIdText(spec));
    await writeCheckpoint(again.checkpoint, specSeed(again), b);
    const files = (await readdir(a)).sort();
    expect((await readdir(b)).sort()).toEqual(files);
    for (const f of files) expect(Buffer.compare(await readFile(join(a, f)), await readFile(join(b, f))), f).toBe(0);
  });
});

describe('checkCase on the decoy case', () => {
  it('passes a loader that reads the files the index names; fails one that globs *.safetensors, diagnosed unindexed-file-read', async () => {
    const ctx = { workDir: work };
    expect(await checkCase(parseSpec(ID), { loader: referenceLoader }, ctx)).toEqual({ status: 'pass' });
    // Without decoys the globbing loader loads what the index names: only the decoy case tells it apart.
    expect(await checkCase(parseSpec(PLAIN), { loader: globbing.loader }, ctx)).toEqual({ status: 'pass' });
    const o = await checkCase(parseSpec(ID), { loader: globbing.loader }, ctx);
    expect(o.status).toBe('fail');
    if (o.status !== 'fail') return;
    const d = o.failure.diagnosis!;
    expect(d[0]).toMatchObject({ kind: 'unindexed-file-read', detail: expect.stringContaining('consolidated.safetensors and model-stale.safetensors, which the index does not name') });
    expect(d.some((x) => x.kind === 'unknown')).toBe(false);
    expect(globbing.diagnosis).toBe('unindexed-file-read');
  });
});
