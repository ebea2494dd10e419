// The "clock" test source: a canvas that shows the time and carries it as a barcode, so the
// player can read, from the picture on screen, when that picture was drawn. Glass-to-glass
// latency = display time − drawn time; exact when publisher and player run on the same computer
// (one clock), off by the clock difference otherwise.

export const CLOCK_WIDTH = 640;
export const CLOCK_HEIGHT = 360;
const CELLS = 48; // 40 bits of time (ms, modulo 2^40) + 8 bits of checksum
const CELL_WIDTH = 12;
const BAR_X = (CLOCK_WIDTH - CELLS * CELL_WIDTH) / 2;
const BAR_Y = 300;
const BAR_HEIGHT = 36;
const TIME_MODULO = 2 ** 40;

function checksum(bytes: readonly number[]): number {
  return (bytes.reduce((sum, byte) => sum + byte, 0) + 0x5a) & 0xff;
}

function timeBytes(ms: number): number[] {
  let value = ms % TIME_MODULO;
  const bytes: number[] = [];
  for (let i = 0; i < 5; i++) {
    bytes.unshift(value % 256);
    value = Math.floor(value / 256);
  }
  return bytes;
}

/** A canvas MediaStream at 30 fps drawing the clock, and a beep once a second; `stop()` ends both. */
export function clockSource(withAudio: boolean): { stream: MediaStream; stop: () => void } {
  const canvas = document.createElement('canvas');
  canvas.width = CLOCK_WIDTH;
  canvas.height = CLOCK_HEIGHT;
  const context = canvas.getContext('2d');
  if (context === null) throw new Error('This browser cannot draw on a canvas.');
  let beep: (() => void) | undefined;
  let audio: AudioContext | undefined;
  let frame = 0;
  const draw = (): void => {
    const now = Date.now();
    frame++;
    if (frame % 30 === 0) beep?.();
    context.fillStyle = `hsl(${(frame * 2) % 360} 45% 28%)`;
    context.fillRect(0, 0, CLOCK_WIDTH, CLOCK_HEIGHT);
    context.fillStyle = '#fff';
    context.fillRect((frame * 8) % CLOCK_WIDTH, 200, 24, 60); // motion
    context.font = 'bold 64px ui-monospace, monospace';
    context.textBaseline = 'top';
    const time = new Date(now);
    const text = `${time.toLocaleTimeString('en-GB', { hour12: false })}.${String(time.getMilliseconds()).padStart(3, '0')}`;
    context.fillText(text, 40, 60);
    context.font = '24px system-ui, sans-serif';
    context.fillText(`ws-stream-server clock · frame ${frame}`, 40, 150);
    const bytes = timeBytes(now);
    const bits = [...bytes, checksum(bytes)].flatMap((byte) => Array.from({ length: 8 }, (_, i) => (byte >> (7 - i)) & 1));
    context.fillStyle = '#000';
    context.fillRect(BAR_X - 8, BAR_Y - 8, CELLS * CELL_WIDTH + 16, BAR_HEIGHT + 16);
    context.fillStyle = '#fff';
    bits.forEach((bit, i) => {
      if (bit === 1) context.fillRect(BAR_X + i * CELL_WIDTH, BAR_Y, CELL_WIDTH, BAR_HEIGHT);
    });
  };
  const stream = canvas.captureStream(30);
  if (withAudio) {
    const sound = new AudioContext();
    audio = sound;
    const oscillator = sound.createOscillator();
    const gain = sound.createGain();
    oscillator.frequency.value = 880;
    gain.gain.value = 0;
    const destination = sound.createMediaStreamDestination();
    oscillator.connect(gain).connect(destination);
    oscillator.start();
    beep = () => {
      gain.gain.setValueAtTime(0.2, sound.currentTime);
      gain.gain.setValueAtTime(0, sound.currentTime + 0.08);
    };
    void sound.resume();
    for (const track of destination.stream.getAudioTracks()) stream.addTrack(track);
  }
  draw();
  const timer = setInterval(draw, 1000 / 30);
  return {
    stream,
    stop: () => {
      clearInterval(timer);
      for (const track of stream.getTracks()) track.stop();
      void audio?.close();
    },
  };
}

/** Reads the barcode from a video frame; returns the time drawn into it, or undefined. */
export class ClockReader {
  private readonly canvas = document.createElement('canvas');
  private readonly context: CanvasRenderingContext2D | null;

  constructor() {
    this.canvas.width = CLOCK_WIDTH;
    this.canvas.height = CLOCK_HEIGHT;
    this.context = this.canvas.getContext('2d', { willReadFrequently: true });
  }

  read(video: HTMLVideoElement): number | undefined {
    if (this.context === null || video.videoWidth === 0) return undefined;
    this.context.drawImage(video, 0, 0, CLOCK_WIDTH, CLOCK_HEIGHT);
    const row = this.context.getImageData(BAR_X, BAR_Y + BAR_HEIGHT / 2 - 2, CELLS * CELL_WIDTH, 4).data;
    const bits: number[] = [];
    for (let cell = 0; cell < CELLS; cell++) {
      let sum = 0;
      for (let y = 0; y < 4; y++) {
        for (let dx = -2; dx <= 2; dx++) {
          const index = (y * CELLS * CELL_WIDTH + cell * CELL_WIDTH + CELL_WIDTH / 2 + dx) * 4;
          sum += 0.299 * row[index]! + 0.587 * row[index + 1]! + 0.114 * row[index + 2]!;
        }
      }
      bits.push(sum / 20 > 128 ? 1 : 0);
    }
    const bytes: number[] = [];
    for (let i = 0; i < 6; i++) bytes.push(bits.slice(i * 8, i * 8 + 8).reduce((value, bit) => value * 2 + bit, 0));
    const data = bytes.slice(0, 5);
    if (checksum(data) !== bytes[5]) return undefined;
    const drawn = data.reduce((value, byte) => value * 256 + byte, 0);
    const now = Date.now();
    const full = now - ((now - drawn) % TIME_MODULO + TIME_MODULO) % TIME_MODULO; // undo the modulo
    return now - full < 60_000 ? full : undefined;
  }
}
