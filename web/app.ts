// The test page: wires the publish panel, the play panel, the probe and the HLS panel to the
// page's elements, and remembers the fields in localStorage.

import { isValidStreamId, pageStreamUrl } from './link.js';
import { hlsUrl, playHls } from './hls-panel.js';
import type { HlsSession } from './hls-panel.js';
import { canUseMse, MsePlayer } from './player.js';
import type { PlayState } from './player.js';
import { probe } from './probe.js';
import type { Probe } from './probe.js';
import { describeMediaError, Publisher, recorderTypes, SOURCE_LABELS } from './publisher.js';
import type { PublishState, SourceKind } from './publisher.js';

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`The page has no #${id}`);
  return found;
}

const input = (id: string): HTMLInputElement => element(id, HTMLInputElement);
const select = (id: string): HTMLSelectElement => element(id, HTMLSelectElement);
const button = (id: string): HTMLButtonElement => element(id, HTMLButtonElement);
const text = (id: string): HTMLElement => element(id, HTMLElement);
const video = (id: string): HTMLVideoElement => element(id, HTMLVideoElement);

// -------------------------------------------------------------------------------- storage

const STORAGE_PREFIX = 'ws-stream-server.';
const REMEMBERED = ['channel', 'key', 'source', 'size', 'format', 'bitrate', 'timeslice', 'keyframe', 'mode', 'max-behind', 'play-as', 'reconnect'];

function load(id: string): string | null {
  try {
    return localStorage.getItem(STORAGE_PREFIX + id);
  } catch {
    return null; // storage disabled (private mode): the page still works
  }
}

function save(id: string, value: string): void {
  try {
    localStorage.setItem(STORAGE_PREFIX + id, value);
  } catch {
    // not remembered, nothing else to do
  }
}

function restoreFields(): void {
  const query = new URLSearchParams(location.search);
  for (const id of REMEMBERED) {
    const field = document.getElementById(id);
    const value = query.get(id) ?? load(id);
    if (value === null) continue;
    if (field instanceof HTMLInputElement && field.type === 'checkbox') field.checked = value === 'true';
    else if (field instanceof HTMLSelectElement) {
      if ([...field.options].some((option) => option.value === value)) field.value = value;
    } else if (field instanceof HTMLInputElement) field.value = value;
  }
  for (const id of REMEMBERED) {
    const field = document.getElementById(id);
    field?.addEventListener('change', () => {
      if (field instanceof HTMLInputElement && field.type === 'checkbox') save(id, String(field.checked));
      else if (field instanceof HTMLInputElement || field instanceof HTMLSelectElement) save(id, field.value);
    });
  }
}

// ------------------------------------------------------------------------------ formatting

function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(0)} KiB`;
  return `${(count / 1024 / 1024).toFixed(1)} MiB`;
}

function duration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

function number(id: string, fallback: number, min: number, max: number): number {
  const value = Number(input(id).value);
  return Number.isFinite(value) && value >= min && value <= max ? value : fallback;
}

function showAlert(id: string, message: string | undefined): void {
  const box = text(id);
  box.hidden = message === undefined;
  box.textContent = message ?? '';
}

function badge(id: string, label: string, kind: '' | 'live' | 'warn' | 'ok' | 'error'): void {
  const box = text(id);
  box.textContent = label;
  box.className = `badge${kind === '' ? '' : ` ${kind}`}`;
}

/** Channel and key, or undefined (the invalid field is marked and focused). */
function streamIds(alertId: string): { channel: string; key: string } | undefined {
  for (const id of ['channel', 'key']) {
    const field = input(id);
    if (!isValidStreamId(field.value)) {
      const message = `The ${id} must be 1 to 128 letters, digits, “-” or “_”.`;
      field.setCustomValidity(message);
      showAlert(alertId, message);
      field.focus();
      return undefined;
    }
    field.setCustomValidity('');
  }
  return { channel: input('channel').value, key: input('key').value };
}

function updateUrls(): void {
  const channel = input('channel').value || 'CHANNEL';
  const key = input('key').value || 'KEY';
  text('publish-url').textContent = pageStreamUrl(channel, key, 'publish');
  text('receive-url').textContent = pageStreamUrl(channel, key, 'receive');
  const hls = input('hls-url');
  if (hls.dataset['edited'] !== 'true') hls.value = hlsUrl(channel);
  element('hls-link', HTMLAnchorElement).href = hls.value;
}

// ---------------------------------------------------------------------------------- publish

let publisher: Publisher | undefined;

function setPublishing(active: boolean): void {
  button('go-live').disabled = active;
  button('stop-publish').disabled = !active;
  for (const id of ['source', 'size', 'format', 'bitrate', 'timeslice', 'keyframe']) {
    (document.getElementById(id) as HTMLInputElement | HTMLSelectElement).disabled = active;
  }
}

function renderPublish(state: PublishState): void {
  const labels = { connecting: ['connecting', ''], live: ['● live', 'live'], congested: ['congested', 'warn'], ended: ['off', state.alert === undefined ? '' : 'error'] } as const;
  const [label, kind] = labels[state.phase];
  badge('publish-badge', label, kind);
  showAlert('publish-alert', state.alert);
  text('publish-status').textContent = state.message;
  text('pub-sent').textContent = `${bytes(state.sentBytes)}`;
  text('pub-rate').textContent = state.phase === 'ended' ? '–' : `${state.kbps.toFixed(0)} kbit/s`;
  text('pub-buffer').textContent = `${bytes(state.bufferedAmount)} / ${bytes(state.bufferBound)}`;
  text('pub-dropped').textContent = state.congestions === 0 ? 'none' : `${bytes(state.droppedBytes)} (${state.congestions}×)`;
  text('pub-time').textContent = state.liveSince === undefined ? '–' : duration(Date.now() - state.liveSince);
  text('pub-time').dataset['seconds'] = state.liveSince === undefined ? '0' : String((Date.now() - state.liveSince) / 1000);
  text('pub-format').textContent = state.mimeType.replace(/^video\/(\w+)(?:;codecs=(.*))?$/, (_, container: string, codecs?: string) => `${container.toUpperCase()}${codecs === undefined ? '' : ` · ${codecs.replace(/,/g, ' + ')}`}`);
  if (state.phase === 'ended') {
    publisher = undefined;
    setPublishing(false);
  }
}

async function goLive(): Promise<void> {
  const ids = streamIds('publish-alert');
  if (ids === undefined || publisher !== undefined) return;
  const mimeType = select('format').value;
  if (mimeType === '') {
    showAlert('publish-alert', 'This browser cannot record video (no MediaRecorder format available).');
    return;
  }
  setPublishing(true);
  showAlert('publish-alert', undefined);
  badge('publish-badge', 'starting', '');
  text('publish-status').textContent = 'Asking for the camera, microphone or screen…';
  try {
    publisher = await Publisher.start(
      {
        ...ids,
        source: select('source').value as SourceKind,
        width: Number(select('size').value.split('x')[0]) || 1280,
        height: Number(select('size').value.split('x')[1]) || 720,
        mimeType,
        videoKbps: number('bitrate', 2500, 100, 20000),
        timesliceMs: number('timeslice', 250, 20, 5000),
        keyframeSeconds: number('keyframe', 2, 0.5, 10),
      },
      video('preview'),
      renderPublish,
    );
  } catch (error) {
    setPublishing(false);
    badge('publish-badge', 'off', 'error');
    showAlert('publish-alert', describeMediaError(error));
    text('publish-status').textContent = 'Not publishing.';
  }
}

function setupPublish(): void {
  const sources = select('source');
  for (const [value, label] of Object.entries(SOURCE_LABELS)) sources.add(new Option(label, value));
  const formats = select('format');
  const types = recorderTypes();
  for (const type of types) formats.add(new Option(type, type));
  if (types.length === 0) {
    formats.add(new Option('not supported by this browser', ''));
    button('go-live').disabled = true;
    text('publish-status').textContent = 'This browser has no MediaRecorder: it can play but not publish.';
  } else if (!window.isSecureContext) {
    text('publish-status').textContent = 'Camera and screen need https:// or localhost; the test clock works anywhere.';
  }
  button('go-live').addEventListener('click', () => void goLive());
  button('stop-publish').addEventListener('click', () => publisher?.stop());
}

// ------------------------------------------------------------------------------------- play

let player: MsePlayer | undefined;
let probing: Probe | undefined;

/** `video/webm;codecs=vp8,opus` → `video/webm; codecs="vp8,opus"`. */
function mseType(recorderType: string): string {
  const [container = '', codecs] = recorderType.split(';codecs=');
  return codecs === undefined ? container : `${container}; codecs="${codecs.replace(/\bavc1\b(?!\.)/, 'avc1.42E01F').replace(/\bh264\b/, 'avc1.42E01F')}"`;
}

function renderPlay(state: PlayState): void {
  const labels = {
    connecting: ['connecting', ''],
    waiting: ['waiting', ''],
    buffering: ['buffering', 'warn'],
    playing: ['● playing', 'ok'],
    stalled: ['stalled', 'warn'],
    finished: ['stream ended', ''],
    ended: ['off', state.alert === undefined ? '' : 'error'],
    unsupported: ['cannot play', 'error'],
  } as const;
  const [label, kind] = labels[state.phase];
  badge('play-badge', label, kind);
  showAlert('play-alert', state.alert);
  text('play-status').textContent = state.message;
  const ms = (value: number | undefined): string => (value === undefined ? '–' : `${value.toFixed(0)} ms`);
  text('play-g2g').textContent = state.glassToGlassMs === undefined ? 'test clock only' : ms(state.glassToGlassMs);
  text('play-a2d').textContent = ms(state.arrivalToDisplayMs);
  text('play-ahead').textContent = state.bufferAhead === undefined ? '–' : `${state.bufferAhead.toFixed(2)} s`;
  text('play-held').textContent = `${state.bufferHeld.toFixed(1)} s`;
  text('play-received').textContent = `${bytes(state.receivedBytes)}, ${state.kbps.toFixed(0)} kbit/s`;
  text('play-size').textContent = state.width === 0 ? (state.media ?? '–') : `${state.width}×${state.height}${state.mimeType === undefined ? '' : `, ${state.mimeType.replace(/^.*codecs="?([^"]*)"?$/, '$1')}`}`;
  text('play-events').textContent = `${state.jumps} · ${state.stalls} · ${state.restarts}`;
  text('play-dropped').textContent = String(state.droppedFrames);
  // Raw numbers for scripts (and the browser tests): data-value on each measurement.
  for (const [id, value] of [['play-g2g', state.glassToGlassMs], ['play-a2d', state.arrivalToDisplayMs], ['play-ahead', state.bufferAhead]] as const) {
    text(id).dataset['value'] = value === undefined ? '' : String(value);
  }
  text('play-status').dataset['phase'] = state.phase;
  if (state.phase === 'ended' || state.phase === 'unsupported') {
    player = undefined;
    button('play-start').disabled = false;
    button('play-stop').disabled = true;
  }
}

function startPlaying(): void {
  const ids = streamIds('play-alert');
  if (ids === undefined || player !== undefined) return;
  showAlert('play-alert', undefined);
  if (!canUseMse()) {
    showAlert('play-alert', 'This browser has no Media Source Extensions, so it cannot play the stream here. Try the HLS panel, or another browser.');
    return;
  }
  const playAs = select('play-as').value;
  const fallback = playAs === '' ? (select('format').value === '' ? undefined : mseType(select('format').value)) : playAs;
  button('play-start').disabled = true;
  button('play-stop').disabled = false;
  player = new MsePlayer(
    {
      ...ids,
      mode: select('mode').value === 'sequence' ? 'sequence' : 'segments',
      maxBehindSeconds: number('max-behind', 2, 0.5, 60),
      fallbackMimeType: fallback,
      reconnect: input('reconnect').checked,
    },
    video('player'),
    renderPlay,
  );
}

async function runProbe(): Promise<void> {
  const result = text('probe-result');
  if (probing !== undefined) {
    probing.cancel();
    return;
  }
  const ids = streamIds('play-alert');
  if (ids === undefined) return;
  const probeButton = button('probe');
  result.hidden = false;
  result.textContent = `Probing “${ids.channel}”: waiting for the first chunk…`;
  probeButton.textContent = 'Cancel probe';
  probing = probe(ids.channel, ids.key);
  try {
    const { size, description } = await probing.result;
    result.textContent =
      `Probe: the first chunk is ${size.toLocaleString('en')} bytes; this page reads it as ${description}. ` +
      '(The server’s own detection is in its admin API, GET /api/v1/channels/<channel> on the admin port, which this page does not reach.)';
  } catch (error) {
    result.textContent = `Probe: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    probing = undefined;
    probeButton.textContent = 'Probe';
  }
}

function setupPlay(): void {
  const playAs = select('play-as');
  playAs.add(new Option('same as the publish Format', ''));
  const MediaSourceClass = (globalThis as { MediaSource?: typeof MediaSource; ManagedMediaSource?: typeof MediaSource }).MediaSource
    ?? (globalThis as { ManagedMediaSource?: typeof MediaSource }).ManagedMediaSource;
  const candidates = ['video/webm; codecs="vp8,opus"', 'video/webm; codecs="vp9,opus"', 'video/webm; codecs="vp8"', 'video/webm; codecs="vp9"', 'video/mp4; codecs="avc1.42E01F,mp4a.40.2"', 'video/mp4; codecs="avc1.42E01F"'];
  for (const type of candidates) if (MediaSourceClass?.isTypeSupported(type)) playAs.add(new Option(type, type));
  button('play-start').addEventListener('click', startPlaying);
  button('play-stop').addEventListener('click', () => player?.stop());
  button('probe').addEventListener('click', () => void runProbe());
}

// -------------------------------------------------------------------------------------- HLS

let hls: HlsSession | undefined;

function setupHls(): void {
  const url = input('hls-url');
  url.addEventListener('input', () => {
    url.dataset['edited'] = 'true';
    element('hls-link', HTMLAnchorElement).href = url.value;
  });
  const status = text('hls-status');
  const report = (message: string, isError: boolean): void => {
    status.textContent = message;
    status.classList.toggle('alert', isError);
  };
  button('hls-play').addEventListener('click', () => {
    hls?.stop();
    button('hls-play').disabled = true;
    report('Checking the playlist…', false);
    void playHls(video('hls-video'), url.value, report)
      .then((session) => {
        hls = session;
        button('hls-stop').disabled = session === undefined;
      })
      .catch((error: unknown) => report(`HLS failed: ${error instanceof Error ? error.message : String(error)}`, true))
      .finally(() => (button('hls-play').disabled = false));
  });
  button('hls-stop').addEventListener('click', () => {
    hls?.stop();
    hls = undefined;
    button('hls-stop').disabled = true;
    report('Stopped.', false);
  });
}

// ------------------------------------------------------------------------------------- start

function main(): void {
  setupPublish();
  setupPlay();
  setupHls();
  restoreFields();
  for (const id of ['channel', 'key']) input(id).addEventListener('input', updateUrls);
  updateUrls();
  showAlert('page-alert', undefined);
  window.addEventListener('error', (event) => showAlert('page-alert', `Page error: ${event.message}`));
  window.addEventListener('unhandledrejection', (event) => showAlert('page-alert', `Page error: ${String(event.reason)}`));
  window.addEventListener('pagehide', () => {
    publisher?.stop();
    player?.stop();
  });
}

main();
