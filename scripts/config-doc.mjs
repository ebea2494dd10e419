// Rewrites the settings table of docs/configuration.md from the settings table in src/config.
// Run `npm run docs:config` after adding or changing a setting (test/config.test.ts checks the doc).
import { readFileSync, writeFileSync } from 'node:fs';
import { flagOf, settingNames, settings } from '../dist/src/config/index.js';

const path = new URL('../docs/configuration.md', import.meta.url);
const start = '<!-- settings:start -->';
const end = '<!-- settings:end -->';
const rows = settingNames.map((name) => {
  const { env, default: fallback, description } = settings[name];
  const shown = fallback === '' ? '(empty)' : `\`${fallback}\``;
  return `| \`${env}\` | \`${flagOf(settings[name])}\` | ${shown} | ${description.replaceAll('|', '\\|')} |`;
});
const table = ['| Variable | Flag | Default | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
const doc = readFileSync(path, 'utf8');
const from = doc.indexOf(start);
const to = doc.indexOf(end);
if (from === -1 || to === -1) throw new Error(`docs/configuration.md lacks the ${start} / ${end} markers`);
writeFileSync(path, `${doc.slice(0, from + start.length)}\n${table}\n${doc.slice(to)}`);
console.log(`docs/configuration.md: ${rows.length} settings`);
