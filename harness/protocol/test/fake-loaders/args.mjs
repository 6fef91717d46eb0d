// Shared by the fake loaders: the protocol arguments as an object.
export function protocolArgs() {
  const a = process.argv.slice(2);
  const get = (k) => a[a.indexOf(k) + 1];
  return { checkpoint: get('--checkpoint'), out: get('--out'), tpSize: Number(get('--tp-size')), tpRank: Number(get('--tp-rank')), all: a };
}
