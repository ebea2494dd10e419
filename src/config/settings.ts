// The one table of settings. Env var names are the Go ws-stream-server's where it has them;
// the CLI flags, the parsers and docs/configuration.md are all derived from this table.

import { parseBoolean, parseIpList, parseListenAddress, parseNumber, parseOriginUrls, parseString, parseWebSocketUrl, parseWorkers } from './parsers.js';
import type { IpList } from './parsers.js';
import { parseArgList, parseBitrate, parseRtmpTemplate } from './bridge-parsers.js';

export interface SettingDefinition<T> {
  /** Environment variable name. */
  readonly env: string;
  /** Default as the user would write it (env/CLI syntax). */
  readonly default: string;
  /** One-line meaning, shown in --help and docs/configuration.md. */
  readonly description: string;
  /** Turns the raw text into a value or throws an Error with a message (the caller names the setting). */
  readonly parse: (raw: string) => T;
  /** Never shown in logs or APIs. */
  readonly secret?: boolean;
}

function setting<T>(definition: SettingDefinition<T>): SettingDefinition<T> {
  return definition;
}

const MiB = 1024 * 1024;

export const settings = {
  httpPort: setting({
    env: 'HTTP_PORT',
    default: '8080',
    description: 'Port of the plain HTTP/WebSocket listener; 0 turns plain HTTP off (TLS only).',
    parse: (raw) => parseNumber(raw, { integer: true, min: 0, max: 65535 }),
  }),
  sslPort: setting({
    env: 'SSL_PORT',
    default: '8443',
    description: 'Port of the TLS (https/wss) listener, used when SSL_CERT and SSL_KEY are set.',
    parse: (raw) => parseNumber(raw, { integer: true, min: 1, max: 65535 }),
  }),
  sslCert: setting({
    env: 'SSL_CERT',
    default: '',
    description: 'TLS certificate file (PEM, with its chain: e.g. certbot\'s fullchain.pem). Reloaded when it changes.',
    parse: parseString,
  }),
  sslKey: setting({
    env: 'SSL_KEY',
    default: '',
    description: 'TLS private key file (PEM). Reloaded when it changes.',
    parse: parseString,
  }),
  sslKeyPassphrase: setting({
    env: 'SSL_KEY_PASSPHRASE',
    default: '',
    description: 'Passphrase of an encrypted SSL_KEY.',
    parse: parseString,
    secret: true,
  }),
  sslCheckReloadSeconds: setting({
    env: 'SSL_CHECK_RELOAD_SECONDS',
    default: '60',
    description: 'How often the certificate files are re-checked, besides watching them for changes.',
    parse: (raw) => parseNumber(raw, { min: 0.1, max: 86_400 }),
  }),
  bindAddress: setting({
    env: 'BIND_ADDRESS',
    default: '',
    description: 'Address to listen on; empty listens on every interface (IPv4 and IPv6).',
    parse: parseString,
  }),
  logRequests: setting({
    env: 'LOG_REQUESTS',
    default: 'YES',
    description: 'Log one line per connection event (YES/NO).',
    parse: parseBoolean,
  }),
  logDebug: setting({
    env: 'LOG_DEBUG',
    default: 'NO',
    description: 'Log debug lines (YES/NO).',
    parse: parseBoolean,
  }),
  idMaxLength: setting({
    env: 'ID_MAX_LENGTH',
    default: '128',
    description: 'Maximum length of CHANNEL and KEY.',
    parse: (raw) => parseNumber(raw, { integer: true, min: 1, max: 4096 }),
  }),
  maxIpConcurrentConnections: setting({
    env: 'MAX_IP_CONCURRENT_CONNECTIONS',
    default: '4',
    description: 'Maximum concurrent WebSocket connections from one IP address (0 = no limit).',
    parse: (raw) => parseNumber(raw, { integer: true, min: 0, max: 1_000_000 }),
  }),
  concurrentLimitWhitelist: setting<IpList>({
    env: 'CONCURRENT_LIMIT_WHITELIST',
    default: '',
    description: 'Comma-separated IPs or CIDR ranges exempt from the per-IP limit (`*` for all).',
    parse: parseIpList,
  }),
  playWhitelist: setting<IpList>({
    env: 'PLAY_WHITELIST',
    default: '',
    description:
      'Comma-separated IPs or CIDR ranges allowed to receive and probe (`*` for all); empty allows everyone.',
    parse: parseIpList,
  }),
  gopCacheSizeMb: setting({
    env: 'GOP_CACHE_SIZE_MB',
    default: '256',
    description:
      'Per-channel cap of the cache sent to late receivers, in MiB: the init and last GOPs of a recognised container (WebM, FLV, MPEG-TS, fragmented MP4), else the most recent chunks (0 disables it).',
    parse: (raw) => parseNumber(raw, { min: 0, max: 1024 * 1024 }),
  }),
  gopCacheGops: setting({
    env: 'GOP_CACHE_GOPS',
    default: '1',
    description: 'Groups of pictures (from one keyframe to the next) cached per channel for late receivers of a recognised container.',
    parse: (raw) => parseNumber(raw, { integer: true, min: 1, max: 1000 }),
  }),
  cacheMemoryLimitMb: setting({
    env: 'CACHE_MEMORY_LIMIT_MB',
    default: 'auto',
    description:
      'Total of all channels\' caches, in MiB: over it the oldest bytes beyond what a late joiner needs are trimmed (opaque streams first, then GOPs older than the last complete one; inits are kept). `auto`: the smaller of 1024 and a quarter of the memory (RAM, or the cgroup limit); 0 = no server-wide limit.',
    parse: (raw): number | 'auto' => (raw.trim().toLowerCase() === 'auto' ? 'auto' : parseNumber(raw, { min: 0, max: 1024 * 1024 })),
  }),
  receiverOverflow: setting({
    env: 'RECEIVER_OVERFLOW',
    default: 'skip',
    description:
      'What a receiver over its buffer gets on a recognised container: `skip` (its queue is dropped and it resumes at the next keyframe) or `close` (`ERROR: Receiver too slow`). Opaque streams always close.',
    parse: (raw): 'skip' | 'close' => {
      const value = raw.trim().toLowerCase();
      if (value === 'skip' || value === 'close') return value;
      throw new Error(`"${raw}" is not skip or close`);
    },
  }),
  maxMessageSizeMb: setting({
    env: 'MAX_MESSAGE_SIZE_MB',
    default: '64',
    description: 'Largest accepted WebSocket message, in MiB (at most 512); larger ones close that client with 1009.',
    // Bounded so that the library's 32-bit limits derived from it cannot overflow.
    parse: (raw) => parseNumber(raw, { min: 1 / MiB, max: 512 }),
  }),
  maxReceiverBufferMb: setting({
    env: 'MAX_RECEIVER_BUFFER_MB',
    default: '16',
    description:
      'Per-receiver send buffer, in MiB (at most 1024); a receiver that falls further behind is sent `ERROR: Receiver too slow` and closed.',
    parse: (raw) => parseNumber(raw, { min: 1 / MiB, max: 1024 }),
  }),
  heartbeatIntervalSeconds: setting({
    env: 'HEARTBEAT_INTERVAL_SECONDS',
    default: '20',
    description: 'How often the server sends the `h` heartbeat to every client (fractions allowed).',
    parse: (raw) => parseNumber(raw, { min: 0.01, max: 86_400 }),
  }),
  idleTimeoutSeconds: setting({
    env: 'IDLE_TIMEOUT_SECONDS',
    default: '60',
    description: 'A client that sends nothing for this long is closed (fractions allowed).',
    parse: (raw) => parseNumber(raw, { min: 0.01, max: 86_400 }),
  }),
  externalIp: setting({
    env: 'EXTERNAL_IP',
    default: '',
    description: 'Public IP announced to the coordinator when the server is behind NAT or a proxy.',
    parse: parseString,
  }),
  externalPort: setting({
    env: 'EXTERNAL_PORT',
    default: '',
    description: 'Public port announced to the coordinator when the server is behind NAT or a proxy.',
    parse: (raw) => (raw === '' ? '' : String(parseNumber(raw, { integer: true, min: 1, max: 65535 }))),
  }),
  externalSsl: setting({
    env: 'EXTERNAL_SSL',
    default: 'NO',
    description: 'Tell the coordinator that clients reach this server over TLS (YES/NO).',
    parse: parseBoolean,
  }),
  controlBaseUrl: setting({
    env: 'CONTROL_BASE_URL',
    default: '',
    description:
      'Coordinator base URL (`ws://` or `wss://`, e.g. `wss://10.0.0.1:8080/`); the server connects to `/ws/control/wss` on it. Empty runs standalone.',
    parse: parseWebSocketUrl,
  }),
  controlSecret: setting({
    env: 'CONTROL_SECRET',
    default: '',
    description: 'Secret shared with the coordinator; signs the HS256 token sent in `x-control-auth-token`.',
    parse: parseString,
    secret: true,
  }),
  controlRequestTimeoutSeconds: setting({
    env: 'CONTROL_REQUEST_TIMEOUT_SECONDS',
    default: '20',
    description: 'How long a publish waits for the coordinator\'s answer before it is refused.',
    parse: (raw) => parseNumber(raw, { min: 0.01, max: 3600 }),
  }),
  controlReconnectMinSeconds: setting({
    env: 'CONTROL_RECONNECT_MIN_SECONDS',
    default: '1',
    description: 'First delay before reconnecting to the coordinator; doubles (with jitter) up to the maximum.',
    parse: (raw) => parseNumber(raw, { min: 0.01, max: 3600 }),
  }),
  controlReconnectMaxSeconds: setting({
    env: 'CONTROL_RECONNECT_MAX_SECONDS',
    default: '30',
    description: 'Longest delay between reconnection attempts to the coordinator.',
    parse: (raw) => parseNumber(raw, { min: 0.01, max: 3600 }),
  }),
  controlHeartbeatSeconds: setting({
    env: 'CONTROL_HEARTBEAT_SECONDS',
    default: '20',
    description: 'How often HEARTBEAT is sent to the coordinator.',
    parse: (raw) => parseNumber(raw, { min: 0.01, max: 3600 }),
  }),
  controlTimeoutSeconds: setting({
    env: 'CONTROL_TIMEOUT_SECONDS',
    default: '60',
    description: 'A coordinator connection silent this long is considered dead and reconnected.',
    parse: (raw) => parseNumber(raw, { min: 0.01, max: 3600 }),
  }),
  controlInsecureTls: setting({
    env: 'CONTROL_INSECURE_TLS',
    default: 'NO',
    description: 'Accept any certificate from a `wss://` coordinator (YES/NO). Only for testing.',
    parse: parseBoolean,
  }),
  streamKeySecret: setting({
    env: 'STREAM_KEY_SECRET',
    default: '',
    description:
      'Standalone mode: a channel\'s key must be the hex HMAC-SHA256 of the channel name with this secret (see `ws-stream-server key`).',
    parse: parseString,
    secret: true,
  }),
  streamKeysFile: setting({
    env: 'STREAM_KEYS_FILE',
    default: '',
    description:
      'Standalone mode: a JSON file `{"channel": "key"}` of allowed keys (or `{"channel": {"publish": "key", "play": ["view-only key"]}}`), re-read when it changes.',
    parse: parseString,
  }),
  // Viewing rights apart from publishing rights (docs/access.md).
  playTokenSecret: setting({
    env: 'PLAY_TOKEN_SECRET',
    default: '',
    description:
      'Secret that signs play tokens (HMAC-SHA256, see `ws-stream-server token` and docs/access.md): a token views one channel (receive, receive-clear-cache, probe) until it expires, never publishes. Empty: no tokens.',
    parse: parseString,
    secret: true,
  }),
  playRequiresToken: setting({
    env: 'PLAY_REQUIRES_TOKEN',
    default: 'NO',
    description:
      'Only a play token views (YES/NO): the publisher\'s key and keys-file play keys view only from INTERNAL_RECEIVERS. Needs PLAY_TOKEN_SECRET.',
    parse: parseBoolean,
  }),
  internalReceivers: setting<IpList>({
    env: 'INTERNAL_RECEIVERS',
    default: '',
    description:
      'Comma-separated IPs or CIDR ranges (encoders, edges) that may still view with a key under PLAY_REQUIRES_TOKEN=YES (`*` for all).',
    parse: parseIpList,
  }),
  adminAddress: setting({
    env: 'ADMIN_ADDRESS',
    default: '127.0.0.1:8090',
    description: 'Address of the admin listener (stats API, `/metrics`, health checks) as `host:port` or `[ipv6]:port`; `off` disables it.',
    parse: parseListenAddress,
  }),
  adminToken: setting({
    env: 'ADMIN_TOKEN',
    default: '',
    description: 'When set, every admin request needs `Authorization: Bearer <token>`.',
    parse: parseString,
    secret: true,
  }),
  adminAllowNoToken: setting({
    env: 'ADMIN_ALLOW_NO_TOKEN',
    default: 'NO',
    description: 'Allow an admin listener on a non-loopback address without ADMIN_TOKEN (YES/NO).',
    parse: parseBoolean,
  }),
  metricsPerChannel: setting({
    env: 'METRICS_PER_CHANNEL',
    default: 'NO',
    description: 'Add per-channel series to `/metrics` (YES/NO); off by default to keep label cardinality bounded.',
    parse: parseBoolean,
  }),
  publicStreamList: setting({
    env: 'PUBLIC_STREAM_LIST',
    default: 'NO',
    description: 'Serve `GET /streams`, the list of live channels, on the public port (YES/NO).',
    parse: parseBoolean,
  }),
  disableTestClient: setting({
    env: 'DISABLE_TEST_CLIENT',
    default: 'NO',
    description: 'Do not serve the browser test page at `/` (YES/NO).',
    parse: parseBoolean,
  }),
  // Bridge (RTMP push, HLS) and recording: see docs/bridge.md.
  ffmpegPath: setting({
    env: 'FFMPEG_PATH',
    default: '',
    description: 'The ffmpeg binary for the bridge and RECORD_REMUX; empty uses `ffmpeg` on the PATH, else the one of `@ffmpeg-installer/ffmpeg`.',
    parse: parseString,
  }),
  bridgeRtmpUrl: setting({
    env: 'BRIDGE_RTMP_URL',
    default: '',
    description:
      'Push every published channel to this RTMP URL (FLV), a template with `{channel}` and `{streamId}`, e.g. `rtmp://127.0.0.1/live/{channel}`; empty: no RTMP push. Secret (it usually holds a stream key).',
    parse: parseRtmpTemplate,
    secret: true,
  }),
  bridgeHls: setting({
    env: 'BRIDGE_HLS',
    default: 'NO',
    description: 'Write every published channel as HLS to HLS_DIR and serve it at `/hls/<channel>/index.m3u8` (YES/NO).',
    parse: parseBoolean,
  }),
  hlsDir: setting({
    env: 'HLS_DIR',
    default: '',
    description: 'Where HLS playlists and segments are written, one folder per channel; empty: `ws-stream-server-hls` in the system temp folder.',
    parse: parseString,
  }),
  hlsSegmentSeconds: setting({
    env: 'HLS_SEGMENT_SECONDS',
    default: '2',
    description: 'Target HLS segment length in seconds (segments are cut at keyframes).',
    parse: (raw) => parseNumber(raw, { min: 0.5, max: 60 }),
  }),
  hlsListSize: setting({
    env: 'HLS_LIST_SIZE',
    default: '6',
    description: 'Segments listed in the HLS playlist; older segments are deleted.',
    parse: (raw) => parseNumber(raw, { integer: true, min: 1, max: 1000 }),
  }),
  hlsKeepAfterEnd: setting({
    env: 'HLS_KEEP_AFTER_END',
    default: 'NO',
    description: 'Keep a channel\'s HLS files when its stream ends (until it is published again) (YES/NO).',
    parse: parseBoolean,
  }),
  bridgeVideoBitrate: setting({
    env: 'BRIDGE_VIDEO_BITRATE',
    default: '2500k',
    description: 'Video bitrate when the bridge transcodes to H.264 (e.g. `2500k`, `4M`).',
    parse: parseBitrate,
  }),
  bridgeMaxHeight: setting({
    env: 'BRIDGE_MAX_HEIGHT',
    default: '0',
    description: 'Scale video taller than this down (aspect kept, never up) when bridging; 0 keeps the size. Forces a transcode of taller H.264.',
    parse: (raw) => {
      const height = parseNumber(raw, { integer: true, min: 0, max: 4320 });
      if (height % 2 !== 0) throw new Error(`${raw} is odd (H.264 needs an even height)`);
      return height;
    },
  }),
  bridgeFps: setting({
    env: 'BRIDGE_FPS',
    default: '0',
    description: 'Output frame rate of the bridge (forces a video transcode); 0 keeps the source rate.',
    parse: (raw) => parseNumber(raw, { min: 0, max: 240 }),
  }),
  bridgeExtraArgs: setting({
    env: 'BRIDGE_EXTRA_ARGS',
    default: '',
    description: 'Extra ffmpeg output options for the bridge, inserted before `-f` (quote with \'…\' or "…"; never run through a shell). For experts.',
    parse: parseArgList,
  }),
  bridgeMaxRestarts: setting({
    env: 'BRIDGE_MAX_RESTARTS',
    default: '5',
    description: 'Restarts of a stream\'s ffmpeg allowed within a minute (backoff 1 s, 2 s, 4 s … 30 s); past that the bridge gives up on that stream.',
    parse: (raw) => parseNumber(raw, { integer: true, min: 0, max: 1000 }),
  }),
  bridgeBufferMb: setting({
    env: 'BRIDGE_BUFFER_MB',
    default: '8',
    description: 'Data waiting for ffmpeg\'s stdin (or a recording\'s disk) per stream, in MiB; past it the stream skips to the next keyframe (opaque streams: ffmpeg is restarted).',
    parse: (raw) => parseNumber(raw, { min: 1 / MiB, max: 1024 }),
  }),
  recordDir: setting({
    env: 'RECORD_DIR',
    default: '',
    description: 'Record every publishing session as-is to `RECORD_DIR/<channel>/<UTC start>_<streamId>.<ext>`; empty: no recording.',
    parse: parseString,
  }),
  recordMaxSizeMb: setting({
    env: 'RECORD_MAX_SIZE_MB',
    default: '0',
    description: 'Roll a recording to a new part file past this size, in MiB, at the next keyframe; 0: no limit.',
    parse: (raw) => parseNumber(raw, { min: 0, max: 1024 * 1024 }),
  }),
  recordRemux: setting({
    env: 'RECORD_REMUX',
    default: 'NO',
    description: 'After a WebM recording ends, remux it with ffmpeg (`-c copy`) to add its duration and cues (YES/NO).',
    parse: parseBoolean,
  }),
  // Edge mode (src/edge/): viewers' channels are pulled from an origin server.
  originUrl: setting({
    env: 'ORIGIN_URL',
    default: '',
    description:
      'Makes this server an edge: comma-separated ws:// or wss:// base URLs of the origin (tried in order, the next on failure); channels not published here are pulled from `<origin>/<channel>/<key>/receive`, publishing is refused. Empty: not an edge.',
    parse: parseOriginUrls,
  }),
  workers: setting({
    env: 'WORKERS',
    default: 'auto',
    description: 'Threads serving connections, all on the same ports; a channel\'s publisher and receivers may be on different threads. `auto`: one per core (os.availableParallelism()); 1: everything on one thread, no message passing.',
    parse: parseWorkers,
  }),
  edgeIdleSeconds: setting({
    env: 'EDGE_IDLE_SECONDS',
    default: '10',
    description: 'On an edge, how long an upstream connection to the origin stays open after its last local viewer left.',
    parse: (raw) => parseNumber(raw, { min: 0, max: 86_400 }),
  }),
} as const;

export type Settings = typeof settings;
export type SettingName = keyof Settings;


export const MEBIBYTE = MiB;
