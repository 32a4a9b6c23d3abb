// Worker entry: install tsx's loader in this thread, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./party-worker.ts');
