// The optional HLS panel: plays the server's HLS output (when its HLS bridge is on) with the
// browser's own HLS (Safari) or hls.js, which the server ships and serves at /_/hls.mjs.

import type HlsClass from 'hls.js';

export function hlsUrl(channel: string): string {
  return `/hls/${channel}/index.m3u8`;
}

export interface HlsSession {
  stop(): void;
}

const HLS_MODULE = '/_/hls.min.mjs';

/** Checks that `url` serves a playlist, then plays it in `video`; `report` gets status lines. */
export async function playHls(video: HTMLVideoElement, url: string, report: (text: string, isError: boolean) => void): Promise<HlsSession | undefined> {
  let response: Response;
  try {
    response = await fetch(url, { cache: 'no-store' });
  } catch (error) {
    report(`Cannot fetch ${url}: ${error instanceof Error ? error.message : String(error)}`, true);
    return undefined;
  }
  const text = response.ok ? await response.text() : '';
  if (!response.ok || !text.startsWith('#EXTM3U')) {
    report(`The server does not serve HLS at ${url} (HTTP ${response.status}): the HLS bridge is off, or nothing is published on this channel.`, true);
    return undefined;
  }
  // hls.js wherever Media Source Extensions exist (the same player everywhere, tuned for low
  // latency); the browser's own HLS otherwise (iPhone Safari before ManagedMediaSource).
  const scope = globalThis as { MediaSource?: unknown; ManagedMediaSource?: unknown };
  if (scope.MediaSource === undefined && scope.ManagedMediaSource === undefined) {
    if (video.canPlayType('application/vnd.apple.mpegurl') === '') {
      report('This browser can play neither HLS nor Media Source Extensions.', true);
      return undefined;
    }
    video.src = url;
    video.play().catch(() => undefined);
    report('Playing with the browser’s native HLS.', false);
    return {
      stop: () => {
        video.removeAttribute('src');
        video.load();
      },
    };
  }
  const module = (await import(HLS_MODULE)) as { default: typeof HlsClass };
  const Hls = module.default;
  if (!Hls.isSupported()) {
    report('hls.js cannot play in this browser.', true);
    return undefined;
  }
  const hls = new Hls({ lowLatencyMode: true, liveSyncDurationCount: 2 });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) {
      report(`HLS playback failed: ${data.details}`, true);
      hls.destroy();
    }
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    video.play().catch(() => undefined);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  report(`Playing with hls.js ${Hls.version}.`, false);
  return { stop: () => hls.destroy() };
}
