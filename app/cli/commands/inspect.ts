// moe-conformance inspect DIR: a readable summary of a model directory: model type, dtypes,
// files, and per MoE layer its tensors and the layout family they belong to.
import { commandFailure, parse, UsageError } from '../args.js';
import { MoeConformanceError } from '../../../harness/errors.js';
import { CheckpointDir } from '../../../harness/checkpoint/directory.js';
import { detect } from '../../../harness/loader/detect.js';
import { relative } from 'node:path';

const USAGE = 'usage: moe-conformance inspect DIR';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('inspect takes exactly one directory');
  const dirPath = positionals[0]!;
  const out: string[] = [];
  let dir: CheckpointDir | undefined;
  try {
    dir = await CheckpointDir.open(dirPath);
    const names = dir.tensorNames();
    const dtypes = new Map<string, number>();
    for (const n of names) dtypes.set(dir.info(n).dtype, (dtypes.get(dir.info(n).dtype) ?? 0) + 1);
    out.push(`directory:  ${dirPath}`);
    out.push(`model_type: ${dir.config.modelType}`);
    out.push(`dtypes:     ${[...dtypes].map(([d, n]) => `${d} (${n} tensors)`).join(', ')}`);
    out.push(`files:      ${dir.files.join(', ')}`);
    const found = detect(dir);
    const d = found.dims;
    out.push(
      `sizes:      E=${d.experts} H=${d.hidden} I=${d.intermediate} Is=${d.sharedIntermediate} top-k=${d.topK} layers=${d.layers}, MoE layers [${d.moeLayers.join(', ')}]`,
    );
    for (const layer of found.layers) {
      const family = layer.layoutsIdentical ? `${layer.layout} (this model's original and fused layouts are the same)` : layer.layout;
      out.push(`layer ${layer.layer}: ${family}, ${layer.tensors.length} tensors`);
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
