// Writes a valid safetensors file holding its own argv (as U8 bytes) and the TP rank (as I32).
import { protocolArgs, writeRankFile } from './args.mjs';
const a = protocolArgs();
writeRankFile(a.out, 'argv', Buffer.from(JSON.stringify(a.all)), a.tpRank);
