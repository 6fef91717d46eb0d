// moe-conformance validate PATH...: every safetensors file, and every model folder (its
// config.json, index and each shard), checked against all the format rules. One line per
// input: `ok PATH` on stdout, or `PATH: ErrorClass: message` on stderr; after `ok`, one
// `PATH: ignored: NAME (not in the index)` line per *.safetensors file beside an index that
// it does not name (never read, as transformers does). Exit 0 when all are valid, 1 when any
// is not, 2 for a usage error.
import { stat } from 'node:fs/promises';
import { startCommand, type CommandDef } from '../options.js';
import { MoeConformanceError } from '../../../harness/errors.js';
import { CheckpointDir } from '../../../harness/checkpoint/directory.js';
import { SafetensorsFile } from '../../../harness/safetensors/read.js';

const DEF: CommandDef = {
  name: 'validate',
  synopsis: ['PATH...'],
  description: `Checks each PATH: a .safetensors file, or a model folder (config.json plus model.safetensors
or shards with model.safetensors.index.json). Prints "ok PATH" for each valid input and
"PATH: ErrorClass: message" for each invalid one. A .safetensors file beside an index that the
index does not name is not read (as transformers does): "PATH: ignored: NAME (not in the index)".
Exit 0 if all are valid, 1 otherwise.`,
  options: {},
  positionals: { name: 'file or folder to validate', min: 1, max: Infinity },
};

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  p.problems.check();
  const positionals = p.positionals;
  let failures = 0;
  for (const path of positionals) {
    try {
      const ignored = await validate(path);
      process.stdout.write(`ok ${path}\n`);
      for (const name of ignored) process.stdout.write(`${path}: ignored: ${oneLine(name)} (not in the index)\n`);
    } catch (e) {
      if (!(e instanceof MoeConformanceError)) throw e;
      failures++;
      process.stderr.write(`${path}: ${e.name}: ${oneLine(e.message)}\n`);
    }
  }
  return failures === 0 ? 0 : 1;
}

/** Validates one input; returns the file names it did not read (beside an index that does not name them). */
async function validate(path: string): Promise<string[]> {
  const isDir = await stat(path).then(
    (s) => s.isDirectory(),
    () => false, // let the file open below report what is wrong with the path
  );
  const opened = isDir ? await CheckpointDir.open(path) : await SafetensorsFile.open(path);
  await opened.close();
  return opened instanceof CheckpointDir ? opened.ignored : [];
}

/** Names and found values may hold line breaks; the report keeps one line per input. */
const oneLine = (s: string): string => s.replace(/\r\n|\r|\n/g, '\\n');
