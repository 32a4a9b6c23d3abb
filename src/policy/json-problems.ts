/**
 * Strict reading of JSON documents (policy files, interchange files) that reports every problem
 * with the path of its field at once, so an operator fixes a file in one pass. Readers return
 * undefined after recording a problem; the caller throws its own typed error with `problems`.
 */
export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A short, safe rendering of an offending value for an error message. */
export const show = (v: unknown, max = 50): string => {
  if (typeof v === 'string') return JSON.stringify(v.length > max ? `${v.slice(0, max)}…` : v);
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? 'an array' : typeof v;
};

export class JsonProblems {
  readonly problems: string[] = [];
  private readonly paths = new Set<string>();
  private readonly limit: number;

  constructor(limit = 50) {
    this.limit = limit;
  }

  /** One problem per path (a missing field is "required", not also the wrong type); at most `limit`. */
  bad(path: string, msg: string): undefined {
    if (this.paths.has(path)) return undefined;
    this.paths.add(path);
    if (this.problems.length < this.limit) this.problems.push(`${path}: ${msg}`);
    else if (this.problems.length === this.limit) this.problems.push('… more problems not listed');
    return undefined;
  }

  /** `o` has every required key and nothing beyond required and optional ones. */
  keys(o: Obj, path: string, required: readonly string[], optional: readonly string[] = []): void {
    const at = (k: string) => (path ? `${path}.${k}` : k);
    for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) this.bad(at(k), 'unknown key');
    for (const k of required) if (!Object.hasOwn(o, k)) this.bad(at(k), 'required');
  }
}
