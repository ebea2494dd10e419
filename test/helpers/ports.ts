import net from 'node:net';

/**
 * A TCP port free on 127.0.0.1 right now. HTTP_PORT=0 means "plain HTTP off", so tests pick
 * ports this way; the tests run one file at a time, so nothing else takes it meanwhile.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
