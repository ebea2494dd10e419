import type { Test } from 'tap';
import { Logger } from '../../src/log/logger.js';

/** Lines kept: the end of a failed test's story, not a whole suite's. */
const KEPT_LINES = 400;

/**
 * A logger for a test's server that keeps its last lines (connections, a worker's crash) and
 * prints them as comments under the test if it fails: a failure seen once, on another machine,
 * then says what the server did.
 */
export function failureLog(t: Test): Logger {
  const lines: string[] = [];
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(`the server's last ${lines.length} log lines:`);
    for (const line of lines) t.comment(line);
  });
  return new Logger({ requests: true, debug: false }, (line) => {
    lines.push(line);
    if (lines.length > KEPT_LINES) lines.shift();
  });
}
