import type { Config } from '../config/index.js';
import { ConfigError } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { OpenAuthorizer } from './authorizer.js';
import type { PublishAuthorizer } from './authorizer.js';
import { ControlClient } from './control-client.js';
import { HmacKeyAuthorizer, KeysFileAuthorizer } from './key-authorizers.js';
import { PLAY_TOKEN_LENGTH, PlayAccess } from './play-access.js';

export { OpenAuthorizer, acceptWithNewStreamId } from './authorizer.js';
export type { PublishAuthorizer, PublishDecision, PublishRequest, StreamController } from './authorizer.js';
export { ControlClient, controlUrl, CONTROL_PATH } from './control-client.js';
export type { ControlClientOptions, ControlState } from './control-client.js';
export { ControlMessage } from './control-message.js';
export { HmacKeyAuthorizer, KeysFileAuthorizer, channelKey, parseKeysFile } from './key-authorizers.js';
export type { ChannelKeys } from './key-authorizers.js';
export { PlayAccess, checkPlayToken, mintPlayToken, parseTokenTtl, playTokenMessage } from './play-access.js';
export type { PlayAccessOptions, PlayTokenCheck, PlayTokenProblem, ViewDecision } from './play-access.js';

/** Picks the authorization mode from the config: coordinator, HMAC keys, keys file, or open. */
export function createAuthorizer(config: Config, logger: Logger): PublishAuthorizer {
  if (config.controlBaseUrl !== '') {
    return new ControlClient({
      baseUrl: config.controlBaseUrl,
      secret: config.controlSecret,
      externalIp: config.externalIp,
      externalPort: config.externalPort,
      externalSsl: config.externalSsl,
      requestTimeoutMs: config.controlRequestTimeoutSeconds * 1000,
      reconnectMinMs: config.controlReconnectMinSeconds * 1000,
      reconnectMaxMs: Math.max(config.controlReconnectMinSeconds, config.controlReconnectMaxSeconds) * 1000,
      heartbeatMs: config.controlHeartbeatSeconds * 1000,
      deadAfterMs: config.controlTimeoutSeconds * 1000,
      insecureTls: config.controlInsecureTls,
      logger,
    });
  }
  if (config.streamKeySecret !== '') return new HmacKeyAuthorizer(config.streamKeySecret);
  if (config.streamKeysFile !== '') {
    try {
      return new KeysFileAuthorizer(config.streamKeysFile, logger);
    } catch (error) {
      throw new ConfigError('STREAM_KEYS_FILE', `Invalid STREAM_KEYS_FILE (--stream-keys-file) ${config.streamKeysFile}: ${(error as Error).message}`);
    }
  }
  logger.warn('No CONTROL_BASE_URL, STREAM_KEY_SECRET or STREAM_KEYS_FILE: publishing is open to any key');
  return new OpenAuthorizer();
}

/** A short description of the mode, for the startup line. */
export function describeAuthorizer(authorizer: PublishAuthorizer): string {
  if (authorizer instanceof ControlClient) return `coordinator mode (${authorizer.url})`;
  if (authorizer instanceof HmacKeyAuthorizer) return 'standalone mode, keys derived from STREAM_KEY_SECRET';
  if (authorizer instanceof KeysFileAuthorizer) return `standalone mode, keys from ${authorizer.path}`;
  return 'standalone mode: any key may publish';
}

/** Who may view, from the config (PLAY_TOKEN_SECRET, PLAY_REQUIRES_TOKEN, INTERNAL_RECEIVERS). Throws ConfigError. */
export function createPlayAccess(config: Config, authorizer: PublishAuthorizer): PlayAccess {
  checkPlayAccessSettings(config);
  return new PlayAccess(
    { tokenSecret: config.playTokenSecret, requireToken: config.playRequiresToken, internalReceivers: config.internalReceivers },
    authorizer,
  );
}

/** Throws ConfigError for play token settings that cannot work together. */
export function checkPlayAccessSettings(config: Config): void {
  if (config.playRequiresToken && config.playTokenSecret === '') {
    throw new ConfigError('PLAY_REQUIRES_TOKEN', 'PLAY_REQUIRES_TOKEN=YES needs PLAY_TOKEN_SECRET (--play-token-secret): without it no viewer could get a token.');
  }
  if (config.playTokenSecret !== '' && config.idMaxLength < PLAY_TOKEN_LENGTH) {
    throw new ConfigError('ID_MAX_LENGTH', `ID_MAX_LENGTH (${config.idMaxLength}) is shorter than a play token (${PLAY_TOKEN_LENGTH} characters) and PLAY_TOKEN_SECRET is set.`);
  }
}
