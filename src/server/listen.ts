import uWS from 'uWebSockets.js';

/** Declared as a type-only enum in the typings, but a real number on the module object. */
const LISTEN_EXCLUSIVE_PORT = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;
const LISTEN_DEFAULT = 0;

type ListenCallback = (socket: uWS.us_listen_socket | false) => void;
/** The native `listen(host, port, options, cb)` form, missing from the typings. */
type ListenWithHost = (host: string, port: number, options: number, cb: ListenCallback) => uWS.TemplatedApp;

export interface ListenOptions {
  /**
   * true: the bind fails if any socket holds the port, and later binds fail while this one
   * does. false: SO_REUSEPORT, uSockets' default, which lets other sockets (and processes) bind
   * the same port and have the kernel split connections between them: only for listeners of
   * this process meant to share a port.
   */
  exclusive: boolean;
}

/**
 * Listens synchronously (uWebSockets.js calls back before returning) on `host` ('' is every
 * interface, IPv4 and IPv6) and `port` (0 picks a free one). Returns the listen socket, or
 * false when the address is in use or not available.
 */
export function listen(app: uWS.TemplatedApp, host: string, port: number, options: ListenOptions): uWS.us_listen_socket | false {
  let result: uWS.us_listen_socket | false = false;
  const done = (socket: uWS.us_listen_socket | false): void => {
    result = socket;
  };
  const flags = options.exclusive ? LISTEN_EXCLUSIVE_PORT : LISTEN_DEFAULT;
  // The host form with '' binds an ephemeral port instead of the one asked for: use the port form.
  if (host === '') app.listen(port, flags as uWS.ListenOptions, done);
  else (app.listen as unknown as ListenWithHost).call(app, host, port, flags, done);
  return result;
}

/** `127.0.0.1:80`, `[::1]:80`, or `*:80` for every interface: for logs and startup errors. */
export function describeAddress(host: string, port: number): string {
  if (host === '') return `*:${port}`;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Closes every socket of an app, idle HTTP keep-alive connections included (they would keep
 * the process alive until uWS's 10 s HTTP idle timeout). At run time the app has `close()`;
 * the typings of this build lack it.
 */
export function closeApp(app: uWS.TemplatedApp): void {
  (app as uWS.TemplatedApp & { close(): void }).close();
}
