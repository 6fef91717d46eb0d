// A worker (spec §5) built on the TypeScript loader kit around one engine-form loader of
// engine-forms.ts, FORM_LOADER naming it; it declares the loader's forms in its handshake
// unless FORM_DECLARE=no. For check --worker tests of declared forms.
import { serveLoader } from '../../../harness/protocol/serve.js';
import { FORM_LOADERS } from '../engine-forms.js';

const l = FORM_LOADERS.find((f) => f.name === process.env.FORM_LOADER);
if (!l) throw new Error(`FORM_LOADER must name one of ${FORM_LOADERS.map((f) => f.name).join(', ')}`);
const declare = process.env.FORM_DECLARE !== 'no';
process.exitCode = await serveLoader({ name: `form loader ${l.name}`, version: '1', load: (dir, req) => l.loader.load(dir, req), ...(declare && { capabilities: { forms: l.forms } }) });
