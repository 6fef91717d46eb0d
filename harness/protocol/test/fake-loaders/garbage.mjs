// Exits 0 after writing bytes that are not safetensors.
import { writeFileSync } from 'node:fs';
import { protocolArgs } from './args.mjs';
writeFileSync(protocolArgs().out, Buffer.from('this is not a safetensors file at all'));
