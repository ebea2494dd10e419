// What a stream's first bytes say about it: the container, the codecs (as the RFC 6381 strings
// MediaSource wants) and the picture size. Reads the WebM/Matroska track list and the MP4 `moov`
// box; recognises FLV and MPEG-TS by their signatures (browsers cannot play those through MSE).

export type Container = 'webm' | 'mp4' | 'flv' | 'mpegts' | 'unknown';

export interface MediaInfo {
  readonly container: Container;
  /** RFC 6381 codec strings, video first. */
  readonly codecs: readonly string[];
  /** The full MediaSource type, e.g. `video/webm; codecs="vp8,opus"`, when the codecs are known. */
  readonly mimeType: string | undefined;
  readonly width: number | undefined;
  readonly height: number | undefined;
  /** The track list was read completely (false: more bytes are needed, or it is not there). */
  readonly complete: boolean;
}

const EBML_MAGIC = [0x1a, 0x45, 0xdf, 0xa3];

/** True when `bytes` begin a new stream: a WebM EBML header, or an MP4 `ftyp` box. */
export function isStreamStart(bytes: Uint8Array): boolean {
  if (startsWith(bytes, EBML_MAGIC)) return true;
  return bytes.length >= 8 && boxType(bytes, 4) === 'ftyp';
}

export function sniffMedia(bytes: Uint8Array): MediaInfo {
  if (startsWith(bytes, EBML_MAGIC)) return sniffWebm(bytes);
  if (bytes.length >= 8 && ['ftyp', 'moov', 'styp', 'moof'].includes(boxType(bytes, 4))) return sniffMp4(bytes);
  if (startsWith(bytes, [0x46, 0x4c, 0x56])) return unplayable('flv');
  if (bytes[0] === 0x47 && (bytes.length < 189 || bytes[188] === 0x47)) return unplayable('mpegts');
  return unplayable('unknown');
}

/** `video/webm; codecs="vp8,opus"`-style text for display. */
export function describeMedia(info: MediaInfo): string {
  const parts: string[] = [info.container === 'mpegts' ? 'MPEG-TS' : info.container.toUpperCase()];
  if (info.codecs.length > 0) parts.push(info.codecs.join(' + '));
  if (info.width !== undefined && info.height !== undefined) parts.push(`${info.width}×${info.height}`);
  return parts.join(', ');
}

function unplayable(container: Container): MediaInfo {
  return { container, codecs: [], mimeType: undefined, width: undefined, height: undefined, complete: container !== 'unknown' };
}

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((byte, i) => bytes[i] === byte);
}

function hex2(value: number): string {
  return value.toString(16).toUpperCase().padStart(2, '0');
}

// ---------------------------------------------------------------------------------------- WebM

const ID = {
  segment: 0x18538067,
  tracks: 0x1654ae6b,
  trackEntry: 0xae,
  trackType: 0x83,
  codecId: 0x86,
  codecPrivate: 0x63a2,
  video: 0xe0,
  pixelWidth: 0xb0,
  pixelHeight: 0xba,
  cluster: 0x1f43b675,
  clusterTimecode: 0xe7,
  info: 0x1549a966,
  timecodeScale: 0x2ad7b1,
} as const;

interface Element {
  id: number;
  /** Offset of the data. */
  start: number;
  /** End of the data (clamped to the bytes there are); unknown sizes run to the end. */
  end: number;
  /** The whole element is within the bytes. */
  whole: boolean;
}

/** Reads an EBML element header at `offset`; undefined when the bytes end inside it. */
function readElement(bytes: Uint8Array, offset: number): Element | undefined {
  const first = bytes[offset];
  if (first === undefined || first === 0) return undefined;
  const idLength = Math.clz32(first) - 23; // 1..4 for valid IDs
  if (idLength < 1 || idLength > 4 || offset + idLength >= bytes.length) return undefined;
  let id = 0;
  for (let i = 0; i < idLength; i++) id = id * 256 + bytes[offset + i]!;
  const sizeFirst = bytes[offset + idLength]!;
  if (sizeFirst === 0) return undefined;
  const sizeLength = Math.clz32(sizeFirst) - 23;
  if (offset + idLength + sizeLength > bytes.length) return undefined;
  let size = sizeFirst & (0xff >> sizeLength);
  let unknown = size === 0xff >> sizeLength;
  for (let i = 1; i < sizeLength; i++) {
    const byte = bytes[offset + idLength + i]!;
    size = size * 256 + byte;
    if (byte !== 0xff) unknown = false;
  }
  const start = offset + idLength + sizeLength;
  const end = unknown ? bytes.length : start + size;
  return { id, start, end: Math.min(end, bytes.length), whole: !unknown && end <= bytes.length };
}

function children(bytes: Uint8Array, start: number, end: number): Element[] {
  const found: Element[] = [];
  let offset = start;
  while (offset < end) {
    const element = readElement(bytes, offset);
    if (element === undefined) break;
    found.push(element);
    if (!element.whole) break;
    offset = element.end;
  }
  return found;
}

function readUint(bytes: Uint8Array, element: Element): number {
  let value = 0;
  for (let i = element.start; i < element.end; i++) value = value * 256 + bytes[i]!;
  return value;
}

function readText(bytes: Uint8Array, element: Element): string {
  return String.fromCharCode(...bytes.subarray(element.start, element.end)).replace(/\0+$/, '');
}

function sniffWebm(bytes: Uint8Array): MediaInfo {
  const top = children(bytes, 0, bytes.length);
  const segment = top.find((element) => element.id === ID.segment);
  const tracks = segment === undefined ? undefined : children(bytes, segment.start, segment.end).find((element) => element.id === ID.tracks);
  if (tracks === undefined) return { ...unplayable('webm'), complete: false };
  const video: string[] = [];
  const audio: string[] = [];
  let width: number | undefined;
  let height: number | undefined;
  for (const entry of children(bytes, tracks.start, tracks.end)) {
    if (entry.id !== ID.trackEntry) continue;
    const fields = children(bytes, entry.start, entry.end);
    const codecId = fields.find((field) => field.id === ID.codecId);
    if (codecId === undefined) continue;
    const privateData = fields.find((field) => field.id === ID.codecPrivate);
    const codec = webmCodec(readText(bytes, codecId), privateData === undefined ? undefined : bytes.subarray(privateData.start, privateData.end));
    const type = fields.find((field) => field.id === ID.trackType);
    const isVideo = type === undefined ? codecId !== undefined && readText(bytes, codecId).startsWith('V_') : readUint(bytes, type) === 1;
    (isVideo ? video : audio).push(codec);
    const picture = fields.find((field) => field.id === ID.video);
    if (isVideo && picture !== undefined) {
      for (const field of children(bytes, picture.start, picture.end)) {
        if (field.id === ID.pixelWidth) width = readUint(bytes, field);
        if (field.id === ID.pixelHeight) height = readUint(bytes, field);
      }
    }
  }
  const codecs = [...video, ...audio];
  return {
    container: 'webm',
    codecs,
    mimeType: codecs.length === 0 ? undefined : `${video.length > 0 ? 'video' : 'audio'}/webm; codecs="${codecs.join(',')}"`,
    width,
    height,
    complete: tracks.whole,
  };
}

function webmCodec(codecId: string, privateData: Uint8Array | undefined): string {
  switch (codecId) {
    case 'V_VP8':
      return 'vp8';
    case 'V_VP9':
      return 'vp9';
    case 'V_AV1':
      return privateData !== undefined && privateData.length >= 3 ? av1Codec(privateData, 0) : 'av01.0.08M.08';
    case 'V_MPEG4/ISO/AVC':
      return privateData !== undefined && privateData.length >= 4 ? `avc1.${hex2(privateData[1]!)}${hex2(privateData[2]!)}${hex2(privateData[3]!)}` : 'avc1.42E01F';
    case 'V_MPEGH/ISO/HEVC':
      return 'hvc1.1.6.L93.B0';
    case 'A_OPUS':
      return 'opus';
    case 'A_VORBIS':
      return 'vorbis';
    case 'A_AAC':
      return 'mp4a.40.2';
    default:
      return codecId.toLowerCase();
  }
}

/** `av01.P.LLT.DD` from an AV1CodecConfigurationRecord starting at `offset`. */
function av1Codec(bytes: Uint8Array, offset: number): string {
  const b1 = bytes[offset + 1]!;
  const b2 = bytes[offset + 2]!;
  const profile = b1 >> 5;
  const level = b1 & 0x1f;
  const tier = b2 & 0x80 ? 'H' : 'M';
  const depth = b2 & 0x40 ? (profile === 2 && b2 & 0x20 ? 12 : 10) : 8;
  return `av01.${profile}.${String(level).padStart(2, '0')}${tier}.${String(depth).padStart(2, '0')}`;
}

// ----------------------------------------------------------------------------------------- MP4

interface Box {
  type: string;
  start: number;
  end: number;
  whole: boolean;
}

function boxType(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(bytes[offset] ?? 0, bytes[offset + 1] ?? 0, bytes[offset + 2] ?? 0, bytes[offset + 3] ?? 0);
}

function u32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] ?? 0) * 0x1000000) + (((bytes[offset + 1] ?? 0) << 16) | ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0));
}

function boxes(bytes: Uint8Array, start: number, end: number): Box[] {
  const found: Box[] = [];
  let offset = start;
  while (offset + 8 <= end) {
    let size = u32(bytes, offset);
    let header = 8;
    if (size === 1) {
      size = u32(bytes, offset + 8) * 2 ** 32 + u32(bytes, offset + 12);
      header = 16;
    } else if (size === 0) {
      size = end - offset;
    }
    if (size < header) break;
    const boxEnd = offset + size;
    found.push({ type: boxType(bytes, offset + 4), start: offset + header, end: Math.min(boxEnd, end), whole: boxEnd <= end });
    if (boxEnd > end) break;
    offset = boxEnd;
  }
  return found;
}

function child(bytes: Uint8Array, parent: Box | undefined, type: string): Box | undefined {
  return parent === undefined ? undefined : boxes(bytes, parent.start, parent.end).find((box) => box.type === type);
}

function sniffMp4(bytes: Uint8Array): MediaInfo {
  const moov = boxes(bytes, 0, bytes.length).find((box) => box.type === 'moov');
  if (moov === undefined) return { ...unplayable('mp4'), complete: false };
  const video: string[] = [];
  const audio: string[] = [];
  let width: number | undefined;
  let height: number | undefined;
  for (const trak of boxes(bytes, moov.start, moov.end).filter((box) => box.type === 'trak')) {
    const stsd = child(bytes, child(bytes, child(bytes, child(bytes, trak, 'mdia'), 'minf'), 'stbl'), 'stsd');
    if (stsd === undefined) continue;
    const entry = boxes(bytes, stsd.start + 8, stsd.end)[0]; // after version/flags and entry_count
    if (entry === undefined) continue;
    const visual = ['avc1', 'avc3', 'hvc1', 'hev1', 'av01', 'vp09'].includes(entry.type);
    if (visual) {
      width = (bytes[entry.start + 24]! << 8) | bytes[entry.start + 25]!;
      height = (bytes[entry.start + 26]! << 8) | bytes[entry.start + 27]!;
      const config = boxes(bytes, entry.start + 78, entry.end)[0];
      video.push(mp4VideoCodec(bytes, entry.type, config));
    } else {
      audio.push(entry.type === 'mp4a' ? 'mp4a.40.2' : entry.type === 'Opus' ? 'opus' : entry.type === 'fLaC' ? 'flac' : entry.type);
    }
  }
  const codecs = [...video, ...audio];
  return {
    container: 'mp4',
    codecs,
    mimeType: codecs.length === 0 ? undefined : `${video.length > 0 ? 'video' : 'audio'}/mp4; codecs="${codecs.join(',')}"`,
    width,
    height,
    complete: moov.whole,
  };
}

function mp4VideoCodec(bytes: Uint8Array, type: string, config: Box | undefined): string {
  if ((type === 'avc1' || type === 'avc3') && config?.type === 'avcC') {
    return `${type}.${hex2(bytes[config.start + 1]!)}${hex2(bytes[config.start + 2]!)}${hex2(bytes[config.start + 3]!)}`;
  }
  if (type === 'av01' && config?.type === 'av1C') return av1Codec(bytes, config.start);
  if (type === 'vp09') return 'vp09.00.10.08';
  if (type === 'hvc1' || type === 'hev1') return `${type}.1.6.L93.B0`;
  return type === 'avc3' ? 'avc3.42E01F' : type === 'avc1' ? 'avc1.42E01F' : type;
}

/** The first Cluster's timestamp in seconds, when `bytes` (a WebM stream start) reach it. */
export function webmFirstTimestamp(bytes: Uint8Array): number | undefined {
  const segment = children(bytes, 0, bytes.length).find((element) => element.id === ID.segment);
  if (segment === undefined) return undefined;
  let scale = 1_000_000; // TimecodeScale, ns per tick
  for (const element of children(bytes, segment.start, segment.end)) {
    if (element.id === ID.info) {
      const timecodeScale = children(bytes, element.start, element.end).find((field) => field.id === ID.timecodeScale);
      if (timecodeScale !== undefined) scale = readUint(bytes, timecodeScale);
    } else if (element.id === ID.cluster) {
      const timecode = children(bytes, element.start, element.end).find((field) => field.id === ID.clusterTimecode);
      return timecode === undefined || !timecode.whole ? undefined : (readUint(bytes, timecode) * scale) / 1e9;
    }
  }
  return undefined;
}
