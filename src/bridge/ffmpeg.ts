import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

/** Where an ffmpeg binary was found, and how. */
export interface FfmpegBinary {
  readonly path: string;
  readonly source: 'FFMPEG_PATH' | 'system' | '@ffmpeg-installer/ffmpeg';
}

/**
 * Finds ffmpeg: `FFMPEG_PATH` when set, else an `ffmpeg` on the PATH, else the static build of
 * the npm package `@ffmpeg-installer/ffmpeg` (ffmpeg 4.1 with libx264, libvpx and libopus; it
 * has no ffprobe). Returns undefined when there is none.
 */
export function findFfmpeg(env: Readonly<Record<string, string | undefined>> = process.env): FfmpegBinary | undefined {
  const configured = env.FFMPEG_PATH;
  if (configured !== undefined && configured !== '') return isExecutable(configured) ? { path: configured, source: 'FFMPEG_PATH' } : undefined;
  for (const directory of (env.PATH ?? '').split(delimiter)) {
    if (directory === '') continue;
    const candidate = join(directory, 'ffmpeg');
    if (isExecutable(candidate)) return { path: candidate, source: 'system' };
  }
  try {
    const installer = createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path?: unknown };
    if (typeof installer.path === 'string' && isExecutable(installer.path)) return { path: installer.path, source: '@ffmpeg-installer/ffmpeg' };
  } catch {
    // No build for this platform (the package's optional dependency is missing).
  }
  return undefined;
}

/** Like findFfmpeg, but throws an Error saying how to provide one. */
export function requireFfmpeg(env: Readonly<Record<string, string | undefined>> = process.env): FfmpegBinary {
  const found = findFfmpeg(env);
  if (found === undefined) {
    throw new Error(
      env.FFMPEG_PATH ? `FFMPEG_PATH=${env.FFMPEG_PATH} is not an executable file` : 'ffmpeg not found: install it, set FFMPEG_PATH, or install @ffmpeg-installer/ffmpeg',
    );
  }
  return found;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const versions = new Map<string, Promise<string | null>>();

/**
 * The version an ffmpeg binary reports (`ffmpeg -version`, e.g. `4.1` or `6.0-1`), or null
 * when it cannot be run. Probed once per path (bounded to 10 s) and cached.
 */
export function ffmpegVersion(path: string): Promise<string | null> {
  let version = versions.get(path);
  if (version === undefined) {
    version = new Promise((resolve) => {
      execFile(path, ['-hide_banner', '-version'], { timeout: 10_000, maxBuffer: 1024 * 1024 }, (error, stdout) => {
        resolve(error === null ? (/ffmpeg version (\S+)/.exec(stdout)?.[1] ?? 'unknown') : null);
      });
    });
    versions.set(path, version);
  }
  return version;
}
