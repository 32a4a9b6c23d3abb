import { readFileSync } from 'node:fs';

/** The app version (`health_status`, op-service pingVersion), read from package.json once. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
