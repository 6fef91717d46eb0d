// moe-conformance inspect DIR: a readable summary of a model directory: model type, dtypes,
// files, and per MoE layer its tensors and the layout family they belong to.
import { commandFailure } from '../args.js';
import { startCommand, type CommandDef } from '../options.js';
import { MoeConformanceError } from '../../../harness/errors.js';
import { CheckpointDir } from '../../../harness/checkpoint/directory.js';
import { detect } from '../../../harness/loader/detect.js';
import { relative } from 'node:path';
import { plural } from '../../../harness/errors.js';

const DEF: CommandDef = {
  name: 'inspect',
  synopsis: ['DIR'],
  description: 'Summarises a model directory: model type, dtypes, files, and per MoE layer its tensors and layout.',
  options: {},
  positionals: { name: 'directory', min: 1, max: 1 },
};

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  p.problems.check();
  const dirPath = p.positionals[0]!;
  const out: string[] = [];
  let dir: CheckpointDir | undefined;
  try {
    dir = await CheckpointDir.open(dirPath);
    const names = dir.tensorNames();
    const dtypes = new Map<string, number>();
    for (const n of names) dtypes.set(dir.info(n).dtype, (dtypes.get(dir.info(n).dtype) ?? 0) + 1);
    out.push(`directory:  ${dirPath}`);
    out.push(`model_type: ${dir.config.modelType}`);
    out.push(`dtypes:     ${[...dtypes].map(([d, n]) => `${d} (${plural(n, 'tensor')})`).join(', ')}`);
    out.push(`files:      ${dir.files.join(', ')}`);
    if (dir.ignored.length > 0) out.push(`ignored:    ${dir.ignored.join(', ')} (not in the index)`);
    const found = detect(dir);
    const d = found.dims;
    out.push(
      `sizes:      E=${d.experts} H=${d.hidden} I=${d.intermediate} Is=${d.sharedIntermediate} top-k=${d.topK} layers=${d.layers}, MoE layers [${d.moeLayers.join(', ')}]`,
    );
    for (const layer of found.layers) {
      const family = layer.layoutsIdentical ? `${layer.layout} (this model's original and fused layouts are the same)` : layer.layout;
      out.push(`layer ${layer.layer}: ${family}, ${plural(layer.tensors.length, 'tensor')}`);
      for (const t of layer.tensors) out.push(`  ${t}  ${dir.info(t).dtype} [${dir.info(t).shape.join(', ')}]  ${relative(dirPath, dir.info(t).file)}`);
    }
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  } catch (e) {
    // What was summarised before a typed failure is still printed.
    if (e instanceof MoeConformanceError && out.length > 0) process.stdout.write(out.join('\n') + '\n');
    return commandFailure('inspect', e);
  } finally {
    await dir?.close();
  }
}
