#!/usr/bin/env node
// Thin launcher: the program lives in dist/ (built by `npm install` through the prepare script).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('ws-stream-server: dist/ is missing; run `npm run build` (npm install does it) first.\n');
  process.exit(1);
}
const { main } = await import(cli.href);
await main();
