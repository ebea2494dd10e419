import { ByteReader } from './byte-reader.js';
import { H264_SPS, HEVC_SPS, h264PictureSize, hevcPictureSize } from './sps.js';
import type { PictureSize } from './sps.js';
import { MediaParseError } from './types.js';
import type { ContainerParser, ParserEvents, TrackInfo } from './types.js';
import { concatBytes, equalBytes } from './bytes.js';

const PACKET = 188;
const SYNC = 0x47;
/** Packets of a video PES searched for an IDR when the encoder set no random_access_indicator. */
const MAX_IDR_SEARCH_PACKETS = 16;
/** How far into a video PES the SPS is looked for (it precedes the first picture). */
const MAX_SPS_SEARCH_PACKETS = 8;
const MAX_SPS_SEARCH_BYTES = 2048;

const STREAM_TYPES: Readonly<Record<number, { type: TrackInfo['type']; codec: string }>> = {
  0x01: { type: 'video', codec: 'MPEG-1' },
  0x02: { type: 'video', codec: 'MPEG-2' },
  0x10: { type: 'video', codec: 'MPEG-4' },
  0x1b: { type: 'video', codec: 'H.264' },
  0x24: { type: 'video', codec: 'HEVC' },
  0x33: { type: 'video', codec: 'VVC' },
  0x03: { type: 'audio', codec: 'MP3' },
  0x04: { type: 'audio', codec: 'MP3' },
  0x0f: { type: 'audio', codec: 'AAC' },
  0x11: { type: 'audio', codec: 'AAC' },
  0x81: { type: 'audio', codec: 'AC-3' },
  0x87: { type: 'audio', codec: 'E-AC-3' },
};
/** Registration descriptors of stream_type 0x06 (private data). */
const REGISTRATIONS: Readonly<Record<string, { type: TrackInfo['type']; codec: string }>> = {
  Opus: { type: 'audio', codec: 'Opus' },
  'AC-3': { type: 'audio', codec: 'AC-3' },
  'EAC3': { type: 'audio', codec: 'E-AC-3' },
  AV01: { type: 'video', codec: 'AV1' },
  HEVC: { type: 'video', codec: 'HEVC' },
};

interface Stream {
  readonly pid: number;
  readonly type: TrackInfo['type'];
  readonly codec: string;
}

/**
 * MPEG-TS: the PAT and PMT packets are the init; a keyframe point is the packet that starts a
 * video PES with random_access_indicator set or, where the encoder omits it, whose payload
 * starts with an IDR (H.264) or IRAP (HEVC) picture. Without video, every audio PES start is one.
 */
export class MpegTsParser implements ContainerParser {
  readonly kind = 'mpegts';
  private readonly reader = new ByteReader();
  private readonly pmtPids = new Set<number>();
  private streams: Stream[] = [];
  /** The PID whose PES starts are keyframe candidates: the first video stream, else the first audio. */
  private keyPid = -1;
  private keyIsVideo = false;
  /** A video PES start waiting for its IDR search. */
  private candidate: number | undefined;
  private candidateTime: number | undefined;
  private searchedPackets = 0;
  /** The last bytes of the previous searched payload, so a start code split across packets is found. */
  private searchTail = new Uint8Array(0);
  /** A keyframe point was reported and its PES has not ended yet. */
  private keyOpen = false;
  /** The start of the current video PES, kept while its SPS may still come; undefined when not looking. */
  private spsSearch: Uint8Array | undefined;
  private spsSearchPackets = 0;
  private lastSps: Uint8Array | undefined;
  private videoSize: PictureSize | undefined;

  constructor(private readonly events: ParserEvents) {}

  get retainFrom(): number {
    return this.candidate ?? this.reader.position;
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
    for (;;) {
      const packet = this.reader.peek(PACKET);
      if (packet === undefined) return;
      if (packet[0] !== SYNC) throw new MediaParseError('mpegts', this.reader.position, 'lost packet sync');
      this.readPacket(packet, this.reader.position);
      this.reader.skip(PACKET);
    }
  }

  private readPacket(packet: Uint8Array, offset: number): void {
    const pid = ((packet[1]! & 0x1f) << 8) | packet[2]!;
    const unitStart = (packet[1]! & 0x40) !== 0;
    const adaptation = (packet[3]! >> 4) & 0x03;
    let payload = 4;
    let randomAccess = false;
    if ((adaptation & 0x02) !== 0) {
      const length = packet[4]!;
      if (length > 0) randomAccess = (packet[5]! & 0x40) !== 0;
      payload = 5 + length;
    }
    if ((adaptation & 0x01) === 0 || payload >= PACKET) return;

    if (pid === 0) {
      if (unitStart) this.readPat(packet, payload, offset);
    } else if (this.pmtPids.has(pid)) {
      if (unitStart) this.readPmt(packet, payload, offset, pid);
    } else if (pid === this.keyPid) {
      this.readKeyStream(packet, payload, offset, unitStart, randomAccess);
    }
  }

  private readPat(packet: Uint8Array, payload: number, offset: number): void {
    const section = payload + 1 + packet[payload]!;
    if (section + 8 > PACKET || packet[section] !== 0x00) return;
    const end = Math.min(section + 3 + (((packet[section + 1]! & 0x0f) << 8) | packet[section + 2]!) - 4, PACKET);
    for (let at = section + 8; at + 4 <= end; at += 4) {
      const program = (packet[at]! << 8) | packet[at + 1]!;
      if (program !== 0) this.pmtPids.add(((packet[at + 2]! & 0x1f) << 8) | packet[at + 3]!);
    }
    this.events.initPart({ slot: 'pat', start: offset, end: offset + PACKET, contentStart: offset + payload, contentEnd: offset + end, fileHeader: false });
  }

  private readPmt(packet: Uint8Array, payload: number, offset: number, pid: number): void {
    const section = payload + 1 + packet[payload]!;
    if (section + 12 > PACKET || packet[section] !== 0x02) return;
    const end = Math.min(section + 3 + (((packet[section + 1]! & 0x0f) << 8) | packet[section + 2]!) - 4, PACKET);
    let at = section + 12 + (((packet[section + 10]! & 0x0f) << 8) | packet[section + 11]!);
    const streams: Stream[] = [];
    while (at + 5 <= end) {
      const streamType = packet[at]!;
      const elementaryPid = ((packet[at + 1]! & 0x1f) << 8) | packet[at + 2]!;
      const infoLength = ((packet[at + 3]! & 0x0f) << 8) | packet[at + 4]!;
      const known = STREAM_TYPES[streamType] ?? registration(packet.subarray(at + 5, Math.min(at + 5 + infoLength, end)));
      streams.push({ pid: elementaryPid, type: known?.type ?? 'other', codec: known?.codec ?? `stream-type-0x${streamType.toString(16)}` });
      at += 5 + infoLength;
    }
    this.events.initPart({ slot: `pmt:${pid}`, start: offset, end: offset + PACKET, contentStart: offset + payload, contentEnd: offset + end, fileHeader: false });
    if (!sameStreams(streams, this.streams)) {
      this.streams = streams;
      const video = streams.find((stream) => stream.type === 'video');
      const key = video ?? streams.find((stream) => stream.type === 'audio');
      this.keyPid = key?.pid ?? -1;
      this.keyIsVideo = video !== undefined;
      this.candidate = undefined;
      this.keyOpen = false;
      this.spsSearch = undefined;
      this.lastSps = undefined;
      this.videoSize = undefined;
      this.reportTracks();
    }
  }

  /** The streams, the key video stream with its size once its SPS told it. */
  private reportTracks(): void {
    this.events.tracks(
      this.streams.map(({ pid, type, codec }) => (pid === this.keyPid && this.videoSize !== undefined ? { type, codec, ...this.videoSize } : { type, codec })),
    );
  }

  private get keyCodec(): string | undefined {
    return this.streams.find((stream) => stream.pid === this.keyPid)?.codec;
  }

  private readKeyStream(packet: Uint8Array, payload: number, offset: number, unitStart: boolean, randomAccess: boolean): void {
    if (unitStart) {
      if (this.keyOpen) {
        this.events.keyframeEnd(offset);
        this.keyOpen = false;
      }
      this.candidate = undefined;
      const timeMs = presentationTime(packet, payload);
      if (!this.keyIsVideo || randomAccess) {
        this.reportKeyframe(offset, timeMs);
      } else {
        this.candidate = offset;
        this.candidateTime = timeMs;
        this.searchedPackets = 0;
        this.searchTail = new Uint8Array(0);
      }
      if (!this.keyIsVideo) return;
      this.spsSearch = new Uint8Array(0);
      this.spsSearchPackets = 0;
      const headerLength = packet[payload + 8];
      if (headerLength === undefined) return;
      payload += 9 + headerLength;
      if (payload >= PACKET) return;
    }
    if (this.spsSearch !== undefined) this.searchSps(packet.subarray(payload));
    if (this.candidate === undefined) return;
    const verdict = this.searchIdr(packet.subarray(payload));
    if (verdict === 'key') this.reportKeyframe(this.candidate, this.candidateTime);
    if (verdict !== 'unknown' || ++this.searchedPackets >= MAX_IDR_SEARCH_PACKETS) this.candidate = undefined;
  }

  private reportKeyframe(offset: number, timeMs: number | undefined): void {
    this.candidate = undefined;
    this.events.keyframe(offset, timeMs);
    this.keyOpen = true;
  }

  /**
   * Looks for an SPS before the first picture of the PES (an encoder repeats it at keyframes),
   * and reports the tracks again when it gives another picture size.
   */
  private searchSps(bytes: Uint8Array): void {
    const codec = this.keyCodec;
    const hevc = codec === 'HEVC';
    if (!hevc && codec !== 'H.264') {
      this.spsSearch = undefined;
      return;
    }
    const data = concatBytes([this.spsSearch!, bytes]);
    const found = findSps(data, hevc);
    if (found === 'more' && ++this.spsSearchPackets < MAX_SPS_SEARCH_PACKETS && data.byteLength < MAX_SPS_SEARCH_BYTES) {
      this.spsSearch = data === bytes ? bytes.slice() : data;
      return;
    }
    this.spsSearch = undefined;
    if (!(found instanceof Uint8Array) || (this.lastSps !== undefined && equalBytes(found, this.lastSps))) return;
    this.lastSps = found.slice();
    const size = hevc ? hevcPictureSize(found) : h264PictureSize(found);
    if (size === undefined || (size.width === this.videoSize?.width && size.height === this.videoSize.height)) return;
    this.videoSize = size;
    this.reportTracks();
  }

  /** Looks for the first picture NAL unit of the PES: an IDR/IRAP one makes it a keyframe. */
  private searchIdr(bytes: Uint8Array): 'key' | 'not-key' | 'unknown' {
    const tail = this.searchTail;
    const data = concatBytes([tail, bytes]);
    const hevc = this.keyCodec === 'HEVC';
    for (let i = 0; i + 3 < data.byteLength; i++) {
      if (data[i] !== 0 || data[i + 1] !== 0 || data[i + 2] !== 1) continue;
      const header = data[i + 3]!;
      if (hevc) {
        const type = (header >> 1) & 0x3f;
        if (type >= 16 && type <= 21) return 'key';
        if (type <= 9) return 'not-key';
      } else {
        const type = header & 0x1f;
        if (type === 5) return 'key';
        if (type >= 1 && type <= 4) return 'not-key';
      }
    }
    this.searchTail = data.slice(Math.max(0, data.byteLength - 3));
    return 'unknown';
  }
}

/**
 * The SPS NAL unit in Annex B bytes, if one starts before the first picture and ends (at the
 * next start code) within them; 'none' if a picture comes first; 'more' if the bytes end before
 * either is known.
 */
function findSps(data: Uint8Array, hevc: boolean): Uint8Array | 'none' | 'more' {
  for (let i = 0; i + 3 < data.byteLength; i++) {
    if (data[i] !== 0 || data[i + 1] !== 0 || data[i + 2] !== 1) continue;
    const header = data[i + 3]!;
    const type = hevc ? (header >> 1) & 0x3f : header & 0x1f;
    if (type === (hevc ? HEVC_SPS : H264_SPS)) {
      for (let end = i + 4; end + 2 < data.byteLength; end++) {
        if (data[end] !== 0 || data[end + 1] !== 0 || data[end + 2] !== 1) continue;
        // The zero of a four-byte start code belongs to it, not to the SPS (which ends in a 1 bit).
        while (end > i + 3 && data[end - 1] === 0) end--;
        return data.subarray(i + 3, end);
      }
      return 'more';
    }
    if (hevc ? type <= 31 : type >= 1 && type <= 5) return 'none';
  }
  return 'more';
}


function registration(descriptors: Uint8Array): { type: TrackInfo['type']; codec: string } | undefined {
  for (let at = 0; at + 2 <= descriptors.byteLength; at += 2 + descriptors[at + 1]!) {
    const tag = descriptors[at]!;
    if (tag === 0x05 && at + 6 <= descriptors.byteLength) {
      const found = REGISTRATIONS[String.fromCharCode(...descriptors.subarray(at + 2, at + 6))];
      if (found !== undefined) return found;
    }
    if (tag === 0x6a) return { type: 'audio', codec: 'AC-3' };
    if (tag === 0x7a) return { type: 'audio', codec: 'E-AC-3' };
  }
  return undefined;
}

/** The PES packet's PTS in milliseconds, if the header carries one. */
function presentationTime(packet: Uint8Array, payload: number): number | undefined {
  if (payload + 14 > PACKET || packet[payload] !== 0 || packet[payload + 1] !== 0 || packet[payload + 2] !== 1) return undefined;
  if ((packet[payload + 7]! & 0x80) === 0) return undefined;
  return readPts(packet, payload + 9) / 90;
}

/** A PES timestamp (PTS or DTS): 33 bits of a 90 kHz clock in 5 bytes with marker bits. */
export function readPts(data: Uint8Array, at: number): number {
  return (
    ((data[at]! >> 1) & 0x07) * 2 ** 30 + data[at + 1]! * 2 ** 22 + (data[at + 2]! >> 1) * 2 ** 15 + data[at + 3]! * 2 ** 7 + (data[at + 4]! >> 1)
  );
}

function sameStreams(a: readonly Stream[], b: readonly Stream[]): boolean {
  return a.length === b.length && a.every((stream, i) => stream.pid === b[i]!.pid && stream.codec === b[i]!.codec);
}

