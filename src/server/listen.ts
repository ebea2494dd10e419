import uWS from 'uWebSockets.js';

/** Declared as a type-only enum in the typings, but a real number on the module object. */
const LISTEN_EXCLUSIVE_PORT = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: uWS.ListenOptions }).LIBUS_LISTEN_EXCLUSIVE_PORT;

/**
 * Listens synchronously (uWebSockets.js calls back before returning); exclusive so a second
 * server on the same port fails instead of sharing it through SO_REUSEPORT. `host` '' is every
 * interface.
 */
export function listenExclusive(app: uWS.TemplatedApp, host: string, port: number): uWS.us_listen_socket | false {
  let result: uWS.us_listen_socket | false = false;
  const done = (socket: uWS.us_listen_socket | false): void => {
    result = socket;
  };
  // The host form has no options argument; a specific address is not shared by default.
  if (host === '') app.listen(port, LISTEN_EXCLUSIVE_PORT, done);
  else app.listen(host, port, done);
  return result;
}

/**
 * Closes every socket of an app, idle HTTP keep-alive connections included (they would keep
 * the process alive until uWS's 10 s HTTP idle timeout). At run time the app has `close()`;
 * the typings of this build lack it.
 */
export function closeApp(app: uWS.TemplatedApp): void {
  (app as uWS.TemplatedApp & { close(): void }).close();
}
