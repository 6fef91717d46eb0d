#!/usr/bin/env node
// moe-conformance: one file per command under commands/, loaded on demand so that
// `--help` and `validate` never pay for the kernels.
import { commandFailure, UsageError } from './args.js';
import { harnessVersion } from '../version.js';

const COMMANDS: Record<string, string> = {
  run: 'the whole suite against the built-in reference loader and kernels (the default job)',
  validate: 'check safetensors files or model directories against the format rules',
  inspect: 'summarise a model directory: type, dtypes, files, MoE layers and their layout',
  load: 'the reference loader as a protocol command (writes one rank\'s canonical tensors)',
  generate: 'write a random checkpoint of a model type in a layout',
  golden: 'compare golden fixtures with every kernel backend',
  check: 'run the conformance suite against a loader command',
  compare: 'tell whether two checkpoints hold the same canonical tensors',
  diff: 'compare two runs\' JSON results: status changes by kind × model type × layout',
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(width)}  ${d}`);
  return `usage: moe-conformance <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n'moe-conformance <command> --help' for a command's options; 'moe-conformance --version' for the version.\n'npm start' runs 'moe-conformance run', the whole suite against the built-in loader.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`moe-conformance ${harnessVersion()}\n`);
    return 0;
  }
  if (!(name in COMMANDS)) {
    process.stderr.write(`moe-conformance: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    return 2;
  }
  try {
    const command = (await import(`./commands/${name}.js`)) as { run(argv: string[]): Promise<number> };
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`moe-conformance ${name}: ${e.message}\n`);
      return 2;
    }
    return commandFailure(name, e);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`moe-conformance: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 70;
  },
);
