// The picture size from an H.264 or H.265 sequence parameter set (ITU-T H.264 7.3.2.1.1,
// H.265 7.3.2.2), for containers that carry no size of their own (MPEG-TS). Pure: bytes in,
// numbers out.

export interface PictureSize {
  readonly width: number;
  readonly height: number;
}

/** NAL unit types of a sequence parameter set. */
export const H264_SPS = 7;
export const HEVC_SPS = 33;

/** The picture size of an H.264 SPS NAL unit (header byte included, emulation prevention still in), or undefined if it cannot be read. */
export function h264PictureSize(nal: Uint8Array): PictureSize | undefined {
  if (nal.byteLength < 4 || (nal[0]! & 0x1f) !== H264_SPS) return undefined;
  try {
    return readH264Sps(new BitReader(unescapeRbsp(nal.subarray(1))));
  } catch {
    return undefined;
  }
}

/** The picture size of an H.265 SPS NAL unit (two-byte header included), or undefined if it cannot be read. */
export function hevcPictureSize(nal: Uint8Array): PictureSize | undefined {
  if (nal.byteLength < 3 || ((nal[0]! >> 1) & 0x3f) !== HEVC_SPS) return undefined;
  try {
    return readHevcSps(new BitReader(unescapeRbsp(nal.subarray(2))));
  } catch {
    return undefined;
  }
}

/** Profiles whose SPS carries chroma format, bit depths and scaling lists. */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function readH264Sps(bits: BitReader): PictureSize | undefined {
  const profile = bits.read(8);
  bits.skip(16); // constraint flags, level_idc
  bits.ue(); // seq_parameter_set_id
  let chromaFormat = 1;
  let separateColourPlanes = false;
  if (HIGH_PROFILES.has(profile)) {
    chromaFormat = bits.ue();
    if (chromaFormat === 3) separateColourPlanes = bits.flag();
    bits.ue(); // bit_depth_luma_minus8
    bits.ue(); // bit_depth_chroma_minus8
    bits.skip(1); // qpprime_y_zero_transform_bypass_flag
    if (bits.flag()) {
      const lists = chromaFormat === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) if (bits.flag()) skipScalingList(bits, i < 6 ? 16 : 64);
    }
  }
  bits.ue(); // log2_max_frame_num_minus4
  const pocType = bits.ue();
  if (pocType === 0) {
    bits.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    bits.skip(1); // delta_pic_order_always_zero_flag
    bits.se(); // offset_for_non_ref_pic
    bits.se(); // offset_for_top_to_bottom_field
    const cycle = bits.ue();
    for (let i = 0; i < cycle; i++) bits.se();
  }
  bits.ue(); // max_num_ref_frames
  bits.skip(1); // gaps_in_frame_num_value_allowed_flag
  const widthInMbs = bits.ue() + 1;
  const heightInMapUnits = bits.ue() + 1;
  const frameMbsOnly = bits.flag();
  if (!frameMbsOnly) bits.skip(1); // mb_adaptive_frame_field_flag
  bits.skip(1); // direct_8x8_inference_flag
  const crop = bits.flag() ? [bits.ue(), bits.ue(), bits.ue(), bits.ue()] : [0, 0, 0, 0];
  // Cropping is counted in chroma samples (7.4.2.1.1): CropUnitX/Y.
  const fieldFactor = frameMbsOnly ? 1 : 2;
  const chromaArrayType = separateColourPlanes ? 0 : chromaFormat;
  const unitX = chromaArrayType === 0 || chromaArrayType === 3 ? 1 : 2;
  const unitY = (chromaArrayType === 1 ? 2 : 1) * fieldFactor;
  const width = widthInMbs * 16 - unitX * (crop[0]! + crop[1]!);
  const height = heightInMapUnits * fieldFactor * 16 - unitY * (crop[2]! + crop[3]!);
  return width > 0 && height > 0 ? { width, height } : undefined;
}

/** scaling_list(): only read past, the size does not depend on it. */
function skipScalingList(bits: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + bits.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

function readHevcSps(bits: BitReader): PictureSize | undefined {
  bits.skip(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = bits.read(3);
  bits.skip(1); // sps_temporal_id_nesting_flag
  // profile_tier_level(1, maxSubLayersMinus1): the general part is 96 bits.
  bits.skip(96);
  const subLayerProfile: boolean[] = [];
  const subLayerLevel: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    subLayerProfile.push(bits.flag());
    subLayerLevel.push(bits.flag());
  }
  if (maxSubLayersMinus1 > 0) bits.skip(2 * (8 - maxSubLayersMinus1));
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (subLayerProfile[i]) bits.skip(88);
    if (subLayerLevel[i]) bits.skip(8);
  }
  bits.ue(); // sps_seq_parameter_set_id
  const chromaFormat = bits.ue();
  const separateColourPlanes = chromaFormat === 3 ? bits.flag() : false;
  const lumaWidth = bits.ue();
  const lumaHeight = bits.ue();
  const crop = bits.flag() ? [bits.ue(), bits.ue(), bits.ue(), bits.ue()] : [0, 0, 0, 0];
  // The conformance window is counted in chroma samples (SubWidthC, SubHeightC; table 6-1).
  const chroma = separateColourPlanes ? 0 : chromaFormat;
  const unitX = chroma === 1 || chroma === 2 ? 2 : 1;
  const unitY = chroma === 1 ? 2 : 1;
  const width = lumaWidth - unitX * (crop[0]! + crop[1]!);
  const height = lumaHeight - unitY * (crop[2]! + crop[3]!);
  return width > 0 && height > 0 ? { width, height } : undefined;
}

/** The RBSP of a NAL unit payload: every 00 00 03 loses its 03 (emulation prevention). */
export function unescapeRbsp(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.byteLength);
  let length = 0;
  let zeros = 0;
  for (const byte of payload) {
    if (zeros >= 2 && byte === 3) {
      zeros = 0;
      continue;
    }
    zeros = byte === 0 ? zeros + 1 : 0;
    out[length++] = byte;
  }
  return out.subarray(0, length);
}

/** MSB-first bit reader with Exp-Golomb codes; throws past the end. */
class BitReader {
  private position = 0;

  constructor(private readonly bytes: Uint8Array) {}

  read(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) {
      const byte = this.bytes[this.position >> 3];
      if (byte === undefined) throw new RangeError('SPS ends early');
      value = value * 2 + ((byte >> (7 - (this.position & 7))) & 1);
      this.position++;
    }
    return value;
  }

  flag(): boolean {
    return this.read(1) === 1;
  }

  skip(count: number): void {
    if (this.position + count > this.bytes.byteLength * 8) throw new RangeError('SPS ends early');
    this.position += count;
  }

  /** ue(v): unsigned Exp-Golomb. */
  ue(): number {
    let zeros = 0;
    while (this.read(1) === 0) {
      if (++zeros > 31) throw new RangeError('Exp-Golomb code too long');
    }
    return 2 ** zeros - 1 + this.read(zeros);
  }

  /** se(v): signed Exp-Golomb. */
  se(): number {
    const code = this.ue();
    return code % 2 === 1 ? (code + 1) / 2 : -(code / 2);
  }
}
