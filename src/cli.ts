import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { Command, CommanderError, Option } from 'commander';
import uWS from 'uWebSockets.js';
import { addClientCommands } from './client/cli.js';
import { ConfigError, flagOf, loadConfig, settingNames, settings } from './config/index.js';
import { isValidId } from './protocol/route.js';
import type { Config, SettingName } from './config/index.js';
import { channelKey, describeAuthorizer, mintPlayToken, parseTokenTtl } from './coordinator/index.js';
import { Logger } from './log/logger.js';
import { Application } from './app.js';
import { VERSION } from './version.js';

/** How long shutdown waits for close frames to reach clients before exiting. */
const SHUTDOWN_GRACE_MS = 250;
/** Exit even if something (e.g. an ffmpeg child) does not stop in time. */
const SHUTDOWN_DEADLINE_MS = 10_000;

export function buildProgram(): Command {
  const program = new Command('ws-stream-server')
    .description('Live-streaming server over plain WebSockets')
    .version(VERSION)
    // Usage errors throw a CommanderError that main() turns into exit code 2; subcommands
    // inherit both settings when created below.
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  const serve = program
    .command('serve', { isDefault: true })
    .description('run the server (default command); every flag can also be set by its environment variable')
    // A word that names no command lands here, as the default command's argument.
    .allowExcessArguments();
  for (const name of settingNames) {
    const definition = settings[name];
    serve.addOption(
      new Option(`${flagOf(definition)} <value>`, definition.description).env(definition.env).default(undefined, `"${definition.default}"`),
    );
  }
  serve.action(async (options: Record<string, string | undefined>, command: Command) => {
    if (command.args.length > 0) {
      const names = program.commands.map((candidate) => candidate.name()).join(', ');
      program.error(`error: unknown command '${command.args[0]}' (commands: ${names}, help)`, { code: 'commander.unknownCommand' });
    }
    const flags: Partial<Record<SettingName, string>> = {};
    for (const name of settingNames) {
      // Only values given on the command line; env and .env are resolved by loadConfig.
      if (command.getOptionValueSource(name) === 'cli' && options[name] !== undefined) flags[name] = options[name];
    }
    await serveCommand(flags);
  });
  program
    .command('key')
    .description('print the key of a channel under STREAM_KEY_SECRET: hex HMAC-SHA256 of the channel name')
    .argument('<channel>', 'channel name')
    .option('--stream-key-secret <secret>', 'the secret (default: $STREAM_KEY_SECRET or .env)')
    .action((channel: string, options: { streamKeySecret?: string }) => {
      const config = loadOrExit(options.streamKeySecret === undefined ? {} : { streamKeySecret: options.streamKeySecret });
      if (config === undefined) return;
      if (config.streamKeySecret === '') return usageError('STREAM_KEY_SECRET is not set (use --stream-key-secret or the environment).');
      process.stdout.write(channelKey(config.streamKeySecret, channel) + '\n');
    });
  program
    .command('token')
    .description('print a play token: it lets its holder view <channel> (receive, probe) until it expires, never publish (docs/access.md)')
    .argument('<channel>', 'channel name')
    .option('--ttl <duration>', 'how long the token is valid: e.g. 90s, 15m, 1h, 2d', '1h')
    .option('--play-token-secret <secret>', 'the secret (default: $PLAY_TOKEN_SECRET or .env)')
    .action((channel: string, options: { ttl: string; playTokenSecret?: string }) => {
      const config = loadOrExit(options.playTokenSecret === undefined ? {} : { playTokenSecret: options.playTokenSecret });
      if (config === undefined) return;
      if (config.playTokenSecret === '') return usageError('PLAY_TOKEN_SECRET is not set (use --play-token-secret or the environment).');
      if (!isValidId(channel, config.idMaxLength)) return usageError(`invalid channel "${channel}": 1 to ${config.idMaxLength} letters, digits, - or _.`);
      let ttl: number;
      try {
        ttl = parseTokenTtl(options.ttl);
      } catch (error) {
        return usageError(`--ttl: ${(error as Error).message}`);
      }
      process.stdout.write(mintPlayToken(config.playTokenSecret, channel, Math.floor(Date.now() / 1000) + ttl) + '\n');
    });
  addClientCommands(program);
  return program;
}

/** The config, or undefined after printing the error and setting exit code 2. */
/** A usage error found by a command itself: says what is wrong, and the process exits 2. */
function usageError(message: string): void {
  process.stderr.write(`ws-stream-server: ${message}\n`);
  process.exitCode = USAGE_EXIT_CODE;
}

function loadOrExit(flags: Partial<Record<SettingName, string>>): Config | undefined {
  try {
    return loadConfig({ flags, env: process.env, dotenv: readDotenv() });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    usageError(error.message);
    return undefined;
  }
}

function readDotenv(): Record<string, string> {
  try {
    return parseEnv(readFileSync('.env', 'utf8')) as Record<string, string>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError('.env', `Cannot read .env: ${(error as Error).message}`);
  }
}

async function serveCommand(flags: Partial<Record<SettingName, string>>): Promise<void> {
  const config = loadOrExit(flags);
  if (config === undefined) return;
  // A log pipe closed by its reader (`ws-stream-server | head`) must not take the server down.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const logger = new Logger({ requests: config.logRequests, debug: config.logDebug });
  if (typeof (uWS as unknown as { getParts?: unknown }).getParts !== 'function') {
    logger.warn('uWebSockets.js native binary did not load: running on its slow JavaScript fallback');
  }
  // Signals are handled from before the listeners open: a SIGTERM as soon as a port answers
  // (a supervisor, a test) must close the server gracefully, not kill it mid-start.
  let app: Application | undefined;
  let shuttingDown = false;
  const closeAndExit = (running: Application): void => {
    void running.close().then(() => setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS));
  };
  const shutdown = (signal: string): void => {
    // `timeout`, systemd and shells may signal a whole process group, or twice: one
    // graceful shutdown is enough, and a repeat must not cut it short.
    if (shuttingDown) {
      logger.info(`${signal} received again: already shutting down`);
      return;
    }
    shuttingDown = true;
    logger.info(`${signal} received: shutting down`);
    setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref();
    if (app !== undefined) closeAndExit(app);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  try {
    app = await Application.start(config, { logger });
  } catch (error) {
    // Nothing else is to keep the process alive.
    process.removeListener('SIGINT', shutdown);
    process.removeListener('SIGTERM', shutdown);
    if (error instanceof ConfigError) {
      usageError(error.message);
    } else {
      logger.error((error as Error).message);
      process.exitCode = 1;
    }
    return;
  }
  if (shuttingDown) {
    closeAndExit(app);
    return;
  }
  logger.info(`Websocket streaming server ${VERSION}, ${describeAuthorizer(app.authorizer)}`);
  if (!config.disableTestClient) {
    const scheme = config.httpPort === 0 ? 'https' : 'http';
    logger.info(`Test client at ${scheme}://localhost:${app.port}/ (DISABLE_TEST_CLIENT=YES turns it off)`);
  }
}

/** Exit code of a command-line usage error (unknown flag or command, missing argument, bad value). */
export const USAGE_EXIT_CODE = 2;

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    // Commander has printed the message (or the help/version asked for) already.
    if (!(error instanceof CommanderError)) throw error;
    process.exitCode = error.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
  }
}
