/** A usage or input error the CLI reports as one line and exit code 2. */
export class CliError extends Error {
  override readonly name = 'CliError';
}
