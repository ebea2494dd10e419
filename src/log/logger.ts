export interface LogOptions {
  /** One line per connection event (LOG_REQUESTS). */
  readonly requests: boolean;
  /** Debug lines (LOG_DEBUG). */
  readonly debug: boolean;
}

export type LogSink = (line: string, isError: boolean) => void;

const defaultSink: LogSink = (line, isError) => {
  (isError ? process.stderr : process.stdout).write(line + '\n');
};

/** Line logger in the Go server's spirit: `[time] [LEVEL] message`. Never given keys at info level. */
export class Logger {
  constructor(
    private readonly options: LogOptions,
    private readonly sink: LogSink = defaultSink,
  ) {}

  get debugEnabled(): boolean {
    return this.options.debug;
  }

  get requestsEnabled(): boolean {
    return this.options.requests;
  }

  info(message: string): void {
    this.write('INFO', message, false);
  }

  warn(message: string): void {
    this.write('WARNING', message, true);
  }

  error(message: string): void {
    this.write('ERROR', message, true);
  }

  /** A connection event: session id and IP first, so one session's lines are easy to grep. */
  request(sessionId: number, ip: string, message: string): void {
    if (this.options.requests) this.write('REQUEST', `#${sessionId} (${ip}) ${message}`, false);
  }

  debug(message: string): void {
    if (this.options.debug) this.write('DEBUG', message, false);
  }

  /** A whole line written elsewhere (a worker thread's), passed to this logger's sink as it is. */
  line(line: string, isError: boolean): void {
    this.sink(line, isError);
  }

  private write(level: string, message: string, isError: boolean): void {
    this.sink(`[${new Date().toISOString()}] [${level}] ${message}`, isError);
  }
}

/** A logger that drops everything (library use, tests that don't look at logs). */
export const silentLogger = new Logger({ requests: false, debug: false }, () => {});
