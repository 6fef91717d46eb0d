// Worker threads do not inherit the --import tsx loader hook's registration in every Node
// 20 release: register it here, then load the TypeScript worker.
import { register } from 'tsx/esm/api';
register();
await import('./worker.ts');
