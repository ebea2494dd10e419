// Publishing from the browser: a camera, screen or clock MediaStream, recorded by MediaRecorder
// in `timeslice` chunks, each sent as one binary WebSocket message. When the socket's send
// buffer passes a bound the chunks are dropped (memory stays bounded) and the recorder is
// stopped; once the buffer has drained it starts again, which begins a new WebM/MP4 stream with
// its header and a keyframe, so receivers continue from a clean point.

import { clockSource } from './clock.js';
import { pageStreamUrl, StreamLink } from './link.js';
import type { Closed } from './link.js';

export type SourceKind = 'camera' | 'camera-mic' | 'screen' | 'screen-mic' | 'clock' | 'clock-audio';

export const SOURCE_LABELS: Record<SourceKind, string> = {
  'camera-mic': 'Camera + microphone',
  camera: 'Camera',
  'screen-mic': 'Screen + microphone',
  screen: 'Screen',
  'clock-audio': 'Test clock + tone (measures latency)',
  clock: 'Test clock (measures latency)',
};

/** MediaRecorder types to offer, best first: WebM (Chrome, Firefox, Edge), MP4 (Safari; recent Chrome). */
const RECORDER_TYPES = [
  'video/webm;codecs=vp8,opus',
  'video/webm;codecs=vp9,opus',
  'video/webm;codecs=av1,opus',
  'video/webm;codecs=h264,opus',
  'video/mp4;codecs=avc1,mp4a.40.2',
  'video/mp4',
  'video/webm',
];

export function recorderTypes(): string[] {
  if (typeof MediaRecorder === 'undefined') return [];
  return RECORDER_TYPES.filter((type) => MediaRecorder.isTypeSupported(type));
}

/** The same type without the audio codec, for sources without sound. */
function videoOnly(type: string): string {
  return type.replace(/,\s*(opus|mp4a[.\w]*)/, '');
}

export interface PublishSettings {
  readonly channel: string;
  readonly key: string;
  readonly source: SourceKind;
  /** Largest picture for camera and screen, e.g. 1280×720 (the test clock is always 640×360). */
  readonly width: number;
  readonly height: number;
  readonly mimeType: string;
  readonly videoKbps: number;
  readonly timesliceMs: number;
  readonly keyframeSeconds: number;
}

export type PublishPhase = 'connecting' | 'live' | 'congested' | 'ended';

export interface PublishState {
  readonly phase: PublishPhase;
  readonly message: string;
  /** The server's `ERROR:` text or the reason the page stopped; shown as an alert. */
  readonly alert: string | undefined;
  readonly mimeType: string;
  readonly liveSince: number | undefined;
  readonly sentBytes: number;
  readonly sentChunks: number;
  readonly droppedBytes: number;
  readonly congestions: number;
  readonly bufferedAmount: number;
  readonly bufferBound: number;
  readonly kbps: number;
}

interface Acquired {
  stream: MediaStream;
  release: () => void;
}

async function acquire(source: SourceKind, width: number, height: number): Promise<Acquired> {
  if (source === 'clock' || source === 'clock-audio') {
    const clock = clockSource(source === 'clock-audio');
    return { stream: clock.stream, release: clock.stop };
  }
  const devices = navigator.mediaDevices;
  if (devices === undefined) {
    throw new Error('Camera and screen capture need a secure context: open this page over https:// or on localhost.');
  }
  const tracks: MediaStreamTrack[] = [];
  const release = (): void => tracks.forEach((track) => track.stop());
  try {
    if (source === 'camera' || source === 'camera-mic') {
      const media = await devices.getUserMedia({ video: { width: { ideal: width }, height: { ideal: height } }, audio: source === 'camera-mic' });
      tracks.push(...media.getTracks());
    } else {
      if (devices.getDisplayMedia === undefined) throw new Error('This browser cannot capture the screen.');
      const screen = await devices.getDisplayMedia({ video: { width: { max: width }, height: { max: height }, frameRate: { max: 30 } }, audio: false });
      tracks.push(...screen.getTracks());
      if (source === 'screen-mic') tracks.push(...(await devices.getUserMedia({ audio: true })).getAudioTracks());
    }
  } catch (error) {
    release();
    throw error;
  }
  return { stream: new MediaStream(tracks), release };
}

export function describeMediaError(error: unknown): string {
  if (error instanceof DOMException) {
    if (error.name === 'NotAllowedError') return 'Permission to use the camera, microphone or screen was denied.';
    if (error.name === 'NotFoundError') return 'No camera or microphone was found.';
    if (error.name === 'NotReadableError') return 'The camera or microphone is in use by another program.';
  }
  return error instanceof Error ? error.message : String(error);
}

export class Publisher {
  private socket: StreamLink | undefined;
  private recorder: MediaRecorder | undefined;
  private readonly monitor: ReturnType<typeof setInterval>;
  private phase: PublishPhase = 'connecting';
  private message = 'Connecting…';
  private alert: string | undefined;
  private liveSince: number | undefined;
  private sentBytes = 0;
  private sentChunks = 0;
  private droppedBytes = 0;
  private congestions = 0;
  /** Chunks are being dropped until the recorder restarts. */
  private dropping = false;
  private recorderStopped = true;
  private sending = Promise.resolve();
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  readonly mimeType: string;
  readonly bufferBound: number;

  private constructor(
    private readonly settings: PublishSettings,
    private readonly media: Acquired,
    private readonly onChange: (state: PublishState) => void,
  ) {
    this.mimeType = media.stream.getAudioTracks().length === 0 ? videoOnly(settings.mimeType) : settings.mimeType;
    // About one second of media may wait in the socket; beyond that we drop and restart.
    this.bufferBound = Math.max(256 * 1024, Math.round((settings.videoKbps + 128) * 1000 / 8));
    this.monitor = setInterval(() => this.check(), 100);
    for (const track of media.stream.getTracks()) {
      track.addEventListener('ended', () => this.end(`The ${track.kind} source ended.`, 'The capture was stopped.'));
    }
  }

  /** Gets the media (asks for permission), shows it in `preview`, connects and starts recording. */
  static async start(settings: PublishSettings, preview: HTMLVideoElement, onChange: (state: PublishState) => void): Promise<Publisher> {
    const media = await acquire(settings.source, settings.width, settings.height);
    const publisher = new Publisher(settings, media, onChange);
    preview.srcObject = media.stream;
    preview.muted = true;
    preview.play().catch(() => undefined); // a preview that cannot autoplay still records
    publisher.connect();
    return publisher;
  }

  get state(): PublishState {
    const now = performance.now();
    while (this.samples.length > 0 && now - this.samples[0]!.at > 5000) this.samples.shift();
    const windowBytes = this.samples.reduce((sum, sample) => sum + sample.bytes, 0);
    const span = Math.max(1000, Math.min(5000, this.liveSince === undefined ? 5000 : Date.now() - this.liveSince));
    return {
      phase: this.phase,
      message: this.message,
      alert: this.alert,
      mimeType: this.mimeType,
      liveSince: this.liveSince,
      sentBytes: this.sentBytes,
      sentChunks: this.sentChunks,
      droppedBytes: this.droppedBytes,
      congestions: this.congestions,
      bufferedAmount: this.socket?.bufferedAmount ?? 0,
      bufferBound: this.bufferBound,
      kbps: (windowBytes * 8) / span,
    };
  }

  stop(): void {
    this.end('Stopped.', undefined);
  }

  private connect(): void {
    const { channel, key } = this.settings;
    this.socket = new StreamLink(pageStreamUrl(channel, key, 'publish'), {
      open: () => {
        this.phase = 'live';
        this.liveSince = Date.now();
        this.message = `Live on “${channel}” as ${this.mimeType}`;
        this.startRecorder();
        this.changed();
      },
      close: (closed: Closed) => {
        if (closed.failed) this.end(`Disconnected. ${closed.explanation}`, closed.serverError ?? closed.explanation);
        else this.end(closed.explanation, undefined);
      },
    });
  }

  private startRecorder(): void {
    const options: MediaRecorderOptions & { videoKeyFrameIntervalDuration?: number } = {
      mimeType: this.mimeType,
      videoBitsPerSecond: this.settings.videoKbps * 1000,
      audioBitsPerSecond: 96_000,
      videoKeyFrameIntervalDuration: this.settings.keyframeSeconds * 1000, // Chrome: a keyframe this often
    };
    const recorder = this.recorder ?? new MediaRecorder(this.media.stream, options);
    if (this.recorder === undefined) {
      this.recorder = recorder;
      recorder.addEventListener('dataavailable', (event) => this.chunk(event.data));
      recorder.addEventListener('stop', () => (this.recorderStopped = true));
      recorder.addEventListener('error', (event) => {
        const error = (event as Event & { error?: DOMException }).error;
        this.end('Recording failed.', `The recorder failed: ${error?.message ?? 'unknown error'}`);
      });
    }
    this.recorderStopped = false;
    recorder.start(this.settings.timesliceMs);
  }

  private chunk(data: Blob): void {
    const socket = this.socket;
    if (data.size === 0 || socket === undefined || this.phase === 'ended') return;
    if (!this.dropping && socket.bufferedAmount > this.bufferBound) this.congest();
    if (this.dropping) {
      this.droppedBytes += data.size;
      return;
    }
    // Read in order: each send waits for the chunks before it.
    this.sending = this.sending.then(async () => socket.send(new Uint8Array(await data.arrayBuffer())));
    this.sentBytes += data.size;
    this.sentChunks++;
    this.samples.push({ at: performance.now(), bytes: data.size });
  }

  /** Too much waits in the socket: drop from here and restart the recorder once it drains. */
  private congest(): void {
    this.dropping = true;
    this.congestions++;
    this.phase = 'congested';
    this.message = 'Network congested: dropping video until the connection catches up, then restarting at a keyframe.';
    if (this.recorder?.state !== 'inactive') this.recorder?.stop();
    this.changed();
  }

  private check(): void {
    const socket = this.socket;
    if (this.dropping && this.recorderStopped && socket !== undefined && socket.isOpen && socket.bufferedAmount <= this.bufferBound / 4) {
      this.dropping = false;
      this.phase = 'live';
      this.message = `Live on “${this.settings.channel}” as ${this.mimeType} (restarted after congestion)`;
      this.startRecorder();
    }
    this.changed();
  }

  private end(message: string, alert: string | undefined): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    this.message = message;
    this.alert ??= alert; // an `ERROR:` from the server stays the headline
    clearInterval(this.monitor);
    if (this.recorder !== undefined && this.recorder.state !== 'inactive') this.recorder.stop();
    this.socket?.close();
    this.media.release();
    this.changed();
  }

  private changed(): void {
    this.onChange(this.state);
  }
}
