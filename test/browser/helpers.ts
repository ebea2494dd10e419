// Real headless Chromium (test/helpers/chromium.ts) driven by playwright-core, against the test
// page of a real server on 127.0.0.1. Page state is read from the DOM with waitForFunction:
// no sleeps.

import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

export { chromiumMissing, launchBrowser, SKIP_REASON } from '../helpers/chromium.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Screenshots go here (git-ignored). */
export const outputDir = join(root, 'test', 'browser', 'output');

/** Bundles the page (web/ and what it imports from src/) into dist/web/, as `npm run build` does (esbuild: well under a second). */
export function ensurePageBuilt(): void {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs')], { stdio: 'inherit' });
}

export interface TestPage {
  page: Page;
  /** Console errors and uncaught exceptions seen so far. */
  errors: string[];
}

/** A blank page in its own context (its own localStorage) that records console errors. */
export async function newPage(browser: Browser, viewport = { width: 1280, height: 900 }): Promise<TestPage> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, errors };
}

/** Loads the test page and waits for its script to have run. */
export async function loadPage(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(`document.getElementById('page-alert').hidden`);
}

export async function openPage(browser: Browser, url: string): Promise<TestPage> {
  const opened = await newPage(browser);
  await loadPage(opened.page, url);
  return opened;
}

export async function setStream(page: Page, channel: string, key: string): Promise<void> {
  await page.fill('#channel', channel);
  await page.fill('#key', key);
}

/**
 * Starts publishing `source` and waits until the page shows it live. 640×360 at 1 Mbit/s by
 * default: CI machines encode it in real time even when busy.
 */
export async function goLive(page: Page, source: string, size = '640x360', kbps = 1000): Promise<void> {
  await page.selectOption('#source', source);
  await page.selectOption('#size', size);
  await page.fill('#bitrate', String(kbps));
  await page.click('#go-live');
  await page.waitForFunction(`document.getElementById('publish-badge').textContent.includes('live')`);
}

export interface VideoState {
  readyState: number;
  videoWidth: number;
  videoHeight: number;
  currentTime: number;
  paused: boolean;
}

export function videoState(page: Page, id = 'player'): Promise<VideoState> {
  return page.evaluate(`(() => {
    const v = document.getElementById(${JSON.stringify(id)});
    return { readyState: v.readyState, videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime, paused: v.paused };
  })()`);
}

/** Waits until the player shows frames: readyState ≥ 3 (HAVE_FUTURE_DATA), a picture size, and time moving past `from`. */
export async function waitPlaying(page: Page, from = 0, timeout = 15_000): Promise<void> {
  await page.waitForFunction(
    `(() => { const v = document.getElementById('player'); return v.readyState >= 3 && v.videoWidth > 0 && !v.paused && v.currentTime > ${from}; })()`,
    undefined,
    { timeout, polling: 50 },
  );
}

/** A number the page exposes as data-value on a stats element (undefined when not measured). */
export async function measured(page: Page, id: string): Promise<number | undefined> {
  const value = await page.getAttribute(`#${id}`, 'data-value');
  return value === null || value === '' ? undefined : Number(value);
}

export function screenshotPath(name: string): string {
  mkdirSync(outputDir, { recursive: true });
  return join(outputDir, name);
}
