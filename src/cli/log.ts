import pino, { type Logger } from 'pino';

/**
 * The daemon's and keygen's JSON log on stderr (`POTLUCK_LOG_LEVEL`), written synchronously.
 * pino's default destination is asynchronous and flushes at exit with a loop that retries a failed
 * write forever: when stderr is a pipe whose reader is gone (the parent died and the lifeline
 * stopped us), a process that exits just after a log line would never exit. Written synchronously,
 * a broken pipe is seen at once and pino stops writing.
 */
export function cliLogger(): Logger {
  return pino({ level: process.env.POTLUCK_LOG_LEVEL ?? 'info', base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}
