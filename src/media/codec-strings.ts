// RFC 6381 codec strings (`vp8`, `avc1.64001F`, `av01.0.08M.08`, `mp4a.40.2`), as a browser's
// MediaSource wants them in a type, made from what the WebM and MP4 parsers read in the track
// list. Plain Uint8Array code: the test page bundles it.
import type { TrackInfo } from './types.js';

/** The codec string of a WebM track from its CodecID and CodecPrivate. */
export function webmCodecString(codecId: string, codecPrivate: Uint8Array | undefined): string {
  switch (codecId) {
    case 'V_VP8':
      return 'vp8';
    case 'V_VP9':
      return 'vp9';
    case 'V_AV1':
      return codecPrivate !== undefined && codecPrivate.byteLength >= 3 ? av1CodecString(codecPrivate) : 'av01.0.08M.08';
    case 'V_MPEG4/ISO/AVC':
      // CodecPrivate is an AVCDecoderConfigurationRecord: profile, constraints, level.
      return codecPrivate !== undefined && codecPrivate.byteLength >= 4 ? `avc1.${hex(codecPrivate, 1, 3)}` : 'avc1.42E01F';
    case 'V_MPEGH/ISO/HEVC':
      return 'hvc1.1.6.L93.B0';
    case 'A_OPUS':
      return 'opus';
    case 'A_VORBIS':
      return 'vorbis';
    case 'A_FLAC':
      return 'flac';
    default:
      return codecId.startsWith('A_AAC') ? 'mp4a.40.2' : codecId.toLowerCase();
  }
}

/**
 * The codec string of an MP4 track from its sample entry type and the body of the entry's
 * first child box (`avcC`, `av1C`…), when there is one.
 */
export function mp4CodecString(entryType: string, config: { type: string; body: Uint8Array } | undefined): string {
  if ((entryType === 'avc1' || entryType === 'avc3') && config?.type === 'avcC' && config.body.byteLength >= 4) return `${entryType}.${hex(config.body, 1, 3)}`;
  if (entryType === 'av01' && config?.type === 'av1C' && config.body.byteLength >= 3) return av1CodecString(config.body);
  switch (entryType) {
    case 'avc1':
    case 'avc3':
      return `${entryType}.42E01F`;
    case 'hvc1':
    case 'hev1':
      return `${entryType}.1.6.L93.B0`;
    case 'vp09':
      return 'vp09.00.10.08';
    case 'vp08':
      return 'vp8';
    case 'mp4a':
      return 'mp4a.40.2';
    case 'Opus':
      return 'opus';
    case 'fLaC':
      return 'flac';
    default:
      return entryType;
  }
}

/**
 * The MediaSource type of a stream, e.g. `video/webm; codecs="vp8,opus"`; undefined when its
 * track list names no codec. `codecs` lists video first.
 */
export function mediaSourceType(container: 'webm' | 'fmp4', codecs: readonly string[], hasVideo: boolean): string | undefined {
  if (codecs.length === 0) return undefined;
  return `${hasVideo ? 'video' : 'audio'}/${container === 'webm' ? 'webm' : 'mp4'}; codecs="${codecs.join(',')}"`;
}

/** The tracks' codec strings in the order a MediaSource type lists them: video first, then audio. */
export function videoThenAudio(tracks: ReadonlyArray<{ readonly type: TrackInfo['type']; readonly codec: string }>): string[] {
  const of = (type: TrackInfo['type']): string[] => tracks.filter((track) => track.type === type).map((track) => track.codec);
  return [...of('video'), ...of('audio')];
}

/** `av01.P.LLT.DD` from an AV1CodecConfigurationRecord. */
function av1CodecString(record: Uint8Array): string {
  const b1 = record[1]!;
  const b2 = record[2]!;
  const profile = b1 >> 5;
  const level = b1 & 0x1f;
  const tier = b2 & 0x80 ? 'H' : 'M';
  const depth = b2 & 0x40 ? (profile === 2 && b2 & 0x20 ? 12 : 10) : 8;
  return `av01.${profile}.${String(level).padStart(2, '0')}${tier}.${String(depth).padStart(2, '0')}`;
}

function hex(bytes: Uint8Array, from: number, count: number): string {
  let text = '';
  for (let i = from; i < from + count; i++) text += bytes[i]!.toString(16).toUpperCase().padStart(2, '0');
  return text;
}
