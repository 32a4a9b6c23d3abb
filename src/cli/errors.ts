/** Exit codes of every command (listed in `potluck --help`). */
export const EXIT = {
  ok: 0,
  /** The operation or check failed (a refused signature, a failed audit, no daemon running, a peer missing). */
  failed: 1,
  /** Usage or configuration error: unknown flag, bad value, missing required flag, bad config file. */
  usage: 2,
} as const;

/** An error the CLI reports as one line; exit code 2 for usage errors, 1 for a failed check. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.usage) {
    super(message);
    this.exitCode = exitCode;
  }
}
