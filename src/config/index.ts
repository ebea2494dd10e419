import { MEBIBYTE, settings } from './settings.js';
import type { SettingDefinition, SettingName, Settings } from './settings.js';

export { settings, MEBIBYTE };
export type { SettingName, SettingDefinition };
export { IpList, canonicalAddress } from './ip-list.js';
export { cacheMemoryLimitBytes } from './memory-limit.js';

/** The typed configuration: one field per setting. */
export type Config = { readonly [K in SettingName]: ReturnType<Settings[K]['parse']> };

/** A bad setting. The message names the env var and the CLI flag. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** Values from CLI flags, keyed like the settings table. Highest precedence. */
  flags?: Partial<Record<SettingName, string>>;
  /** Process environment. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Values read from a .env file. Lowest precedence before the defaults. */
  dotenv?: Readonly<Record<string, string>>;
}

/** `HTTP_PORT` → `--http-port`. */
export function flagOf(definition: SettingDefinition<unknown>): string {
  return `--${definition.env.toLowerCase().replaceAll('_', '-')}`;
}

export const settingNames = Object.keys(settings) as SettingName[];

/** Builds the config: flag beats env beats .env beats default. Throws ConfigError. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const { flags = {}, env = {}, dotenv = {} } = sources;
  const lookup = (name: string): string | undefined => {
    const value = env[name] ?? dotenv[name];
    return value === undefined || value === '' ? undefined : value;
  };

  const config: Record<string, unknown> = {};
  const raws: Partial<Record<SettingName, string>> = {};
  const given = (env: string): boolean => lookup(env) !== undefined || Object.entries(flags).some(([name, value]) => value !== undefined && value !== '' && settings[name as SettingName].env === env);
  for (const name of settingNames) {
    const definition: SettingDefinition<unknown> = settings[name];
    const raw = flags[name] ?? lookup(definition.env) ?? definition.default;
    raws[name] = raw;
    try {
      config[name] = definition.parse(raw);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConfigError(
        definition.env,
        `Invalid ${definition.env} (${flagOf(definition)}): ${reason}. ${definition.description}`,
      );
    }
  }
  const admin = config.adminAddress as { host: string; port: number; loopback: boolean } | null;
  if (admin !== null && !admin.loopback && config.adminToken === '' && config.adminAllowNoToken !== true) {
    throw new ConfigError(
      'ADMIN_ADDRESS',
      `ADMIN_ADDRESS ${admin.host}:${admin.port} is reachable from other machines but ADMIN_TOKEN is not set: set a token, or ADMIN_ALLOW_NO_TOKEN=YES if a firewall protects it.`,
    );
  }
  const exclusive = ['CONTROL_BASE_URL', 'STREAM_KEY_SECRET', 'STREAM_KEYS_FILE'].filter(given);
  if (exclusive.length > 1) {
    throw new ConfigError(exclusive[1]!, `${exclusive.join(' and ')} are both set: choose one way to authorize publishers.`);
  }
  rawValues.set(config, raws);
  return config as Config;
}

const rawValues = new WeakMap<object, Partial<Record<SettingName, string>>>();

/**
 * The text each setting of `config` was parsed from: `loadConfig({ flags: settingsTextOf(c) })`
 * builds the same config again (a worker thread does, as a Config holds class instances).
 */
export function settingsTextOf(config: Config): Partial<Record<SettingName, string>> {
  const raws = rawValues.get(config);
  if (raws === undefined) throw new Error('settingsTextOf: the config was not made by loadConfig()');
  return { ...raws };
}

/** Settings as text for logs and APIs: defaults elided, nothing secret. */
export function describeConfig(config: Config): Record<string, string> {
  const summary: Record<string, string> = {};
  for (const name of settingNames) {
    const value = config[name] as unknown;
    const definition: SettingDefinition<unknown> = settings[name];
    if (definition.secret === true) {
      summary[definition.env] = value === '' ? '' : '(set)';
      continue;
    }
    summary[definition.env] =
      typeof value === 'boolean' ? (value ? 'YES' : 'NO') : value === null ? 'off' : typeof value === 'object' ? describeValue(value) : String(value);
  }
  return summary;
}

function describeValue(value: object): string {
  if ('source' in value) return String(value.source);
  if ('host' in value && 'port' in value) return `${String(value.host)}:${String(value.port)}`;
  return JSON.stringify(value);
}
