import type { Test } from 'tap';
import { freePort } from '../helpers/ports.js';
import { startThreaded } from './helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies are checked field by field */

/** JSON and Prometheus reads of an admin listener on 127.0.0.1. */
export function adminClient(port: number) {
  const json = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, init);
    return { status: response.status, body: await response.json() };
  };
  /** The Prometheus samples, by `name{labels}`. */
  const metrics = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return new Map(text.split('\n').flatMap((line) => {
      const match = /^(\S+) (\S+)$/.exec(line);
      return match === null || line.startsWith('#') ? [] : [[match[1]!, Number(match[2])] as const];
    }));
  };
  /** Asks again (each time a real request) until `check` holds; no timer involved. */
  const until = async (path: string, check: (body: any) => boolean, what: string): Promise<any> => {
    for (let attempt = 0; attempt < 2000; attempt++) {
      const { body } = await json(path);
      if (check(body)) return body;
    }
    throw new Error(`${path}: never ${what}`);
  };
  return { json, metrics, until };
}

/** `startThreaded` with 3 workers and an admin listener. */
export async function startWithAdmin(t: Test, settings: Record<string, string> = {}) {
  const adminPort = await freePort();
  const server = await startThreaded(t, 3, { adminAddress: `127.0.0.1:${adminPort}`, ...settings });
  return { ...server, ...adminClient(adminPort) };
}

