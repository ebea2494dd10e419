// The one way tests start a real headless Chromium (Debian's /usr/bin/chromium, or CHROMIUM_PATH):
// playwright-core drives it over the DevTools protocol on a pipe, so every step has a deadline
// (launch, navigation, waits) and a request pending when the browser goes away is rejected
// instead of hanging.

import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { Test } from 'tap';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const chromiumMissing = !existsSync(CHROMIUM);
export const SKIP_REASON = `browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--autoplay-policy=no-user-gesture-required',
  // Several pages play at once: keep the ones not in front running at full speed.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** A fresh browser, closed when `t` ends. */
export async function launchBrowser(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 30_000 });
  t.teardown(() => browser.close());
  return browser;
}

/**
 * Runs `expression` in `page` (a promise is awaited) and returns its JSON value. Playwright's
 * evaluate has no deadline of its own: a promise that never settles fails here naming `step`,
 * not as a bare timeout of the whole file.
 */
export async function evaluate<T>(page: Page, step: string, expression: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step}: the page did not answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([page.evaluate(expression) as Promise<T>, expired]);
  } finally {
    clearTimeout(timer);
  }
}
