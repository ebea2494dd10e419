import t from 'tap';
import { h264PictureSize, hevcPictureSize, unescapeRbsp } from '../../src/media/sps.js';
import { parseBuffer } from '../../src/media/parsers.js';
import { concat, ffmpeg, makeSample } from './helpers.js';

/** The NAL units of an Annex B byte stream (split here independently of the server's code). */
function nalUnits(stream: Uint8Array): Uint8Array[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < stream.length; i++) if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) starts.push(i + 3);
  return starts.map((start, k) => {
    let end = k + 1 < starts.length ? starts[k + 1]! - 3 : stream.length;
    while (end > start && stream[end - 1] === 0) end--;
    return stream.subarray(start, end);
  });
}

/** The SPS NAL unit ffmpeg writes for one frame of `size` with these encoder arguments. */
async function encodedSps(size: string, codec: 'h264' | 'hevc', args: readonly string[] = []): Promise<Uint8Array> {
  const encoder = codec === 'h264' ? ['-c:v', 'libx264', '-preset', 'ultrafast'] : ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error'];
  const { stdout } = await ffmpeg(['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-frames:v', '1', ...encoder, ...args, '-f', codec, 'pipe:1']);
  const type = (nal: Uint8Array): number => (codec === 'h264' ? nal[0]! & 0x1f : (nal[0]! >> 1) & 0x3f);
  const sps = nalUnits(stdout).find((nal) => type(nal) === (codec === 'h264' ? 7 : 33));
  if (sps === undefined) throw new Error(`no SPS in ffmpeg's ${codec} output`);
  return sps;
}

const sizeOf = (size: string): { width: number; height: number } => {
  const [width, height] = size.split('x').map(Number);
  return { width: width!, height: height! };
};

t.test('H.264 SPS from ffmpeg: cropping, interlacing, high profiles', async (t) => {
  const cases: Array<{ size: string; args?: string[]; profile?: number; label: string }> = [
    { size: '426x240', profile: 66, args: ['-profile:v', 'baseline'], label: 'Baseline, width cropped (27 macroblocks = 432)' },
    { size: '854x480', label: 'width cropped to an odd number of chroma samples' },
    { size: '1920x1080', label: 'height cropped (68 macroblocks = 1088)' },
    { size: '1920x1080', args: ['-flags', '+ildct+ilme', '-x264-params', 'interlaced=1'], label: 'interlaced: frame_mbs_only_flag 0, cropping in field units' },
    { size: '426x240', profile: 244, args: ['-pix_fmt', 'yuv444p'], label: 'High 4:4:4: chroma_format_idc 3, cropping in luma samples' },
    { size: '426x240', profile: 122, args: ['-pix_fmt', 'yuv422p'], label: 'High 4:2:2: chroma_format_idc 2' },
    { size: '640x360', label: 'no cropping needed' },
  ];
  for (const { size, args = [], profile, label } of cases) {
    const sps = await encodedSps(size, 'h264', ['-pix_fmt', 'yuv420p', ...args]);
    if (profile !== undefined) t.equal(sps[1], profile, `${size} ${label}: profile_idc ${profile}`);
    t.same(h264PictureSize(sps), sizeOf(size), `${size} ${label}`);
  }
});

t.test('H.265 SPS from ffmpeg: conformance window', async (t) => {
  for (const [size, args] of [['638x358', []], ['1920x1080', []], ['426x240', ['-pix_fmt', 'yuv444p']]] as const) {
    const sps = await encodedSps(size, 'hevc', args);
    t.same(hevcPictureSize(sps), sizeOf(size), `${size} ${args.join(' ')}`);
  }
});

t.test('emulation prevention bytes are removed before reading', async (t) => {
  t.same([...unescapeRbsp(Uint8Array.from([1, 0, 0, 3, 0, 0, 0, 3, 1, 0, 0, 3]))], [1, 0, 0, 0, 0, 0, 1, 0, 0]);
  t.same([...unescapeRbsp(Uint8Array.from([0, 3, 0, 0, 4, 3]))], [0, 3, 0, 0, 4, 3], 'a 3 not after 00 00 stays');
  // Crops of 2^15 - 1 write 30 zero bits in a row: the encoder must escape them.
  const fields = { widthInMbs: 4100, heightInMapUnits: 4100, crop: [0, 32767, 32767, 1] as const };
  const sps = writeH264Sps(fields);
  t.ok(hasEscape(sps), 'the SPS needed emulation prevention');
  t.same(h264PictureSize(sps), { width: 4100 * 16 - 2 * 32767, height: 4100 * 16 - 2 * (32767 + 1) });
});

t.test('a High profile SPS with scaling lists (x264 does not write them) is read past them', async (t) => {
  const sps = writeH264Sps({ widthInMbs: 80, heightInMapUnits: 45, crop: [0, 0, 0, 4], scalingLists: true });
  t.same(h264PictureSize(sps), { width: 1280, height: 720 - 2 * 4 });
  t.equal(h264PictureSize(sps.subarray(0, 8)), undefined, 'cut short: no size, no exception');
  t.equal(h264PictureSize(Uint8Array.from([0x68, 1, 2, 3, 4])), undefined, 'not an SPS (a PPS)');
  const oversized = writeH264Sps({ widthInMbs: 2, heightInMapUnits: 2, crop: [0, 20, 0, 0] });
  t.equal(h264PictureSize(oversized), undefined, 'a crop wider than the picture is no size');
});

t.test('MPEG-TS media info has the picture size from the SPS, and follows a size change', async (t) => {
  for (const size of ['426x240', '854x480']) {
    const stream = await makeSample('mpegts', { seconds: 1, size });
    t.same(parseBuffer(stream, 4096).tracks, [{ type: 'video', codec: 'H.264', ...sizeOf(size) }, { type: 'audio', codec: 'AAC' }], size);
  }
  const first = await makeSample('mpegts', { seconds: 1, size: '320x240' });
  const second = await makeSample('mpegts', { seconds: 1, size: '1920x1080' });
  t.same(parseBuffer(first, 1000).tracks[0], { type: 'video', codec: 'H.264', width: 320, height: 240 });
  t.same(parseBuffer(concat([first, second]), 1000).tracks[0], { type: 'video', codec: 'H.264', width: 1920, height: 1080 }, 'the new size after the encoder restarted');

  const { stdout: hevc } = await ffmpeg([
    '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=638x358:rate=25', '-t', '1',
    '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-f', 'mpegts', 'pipe:1',
  ]);
  t.same(parseBuffer(hevc, 1000).tracks, [{ type: 'video', codec: 'HEVC', width: 638, height: 358 }], 'HEVC');
});

function hasEscape(nal: Uint8Array): boolean {
  for (let i = 0; i + 2 < nal.length; i++) if (nal[i] === 0 && nal[i + 1] === 0 && nal[i + 2] === 3) return true;
  return false;
}

/**
 * A High profile SPS (4:2:0, frame_mbs_only), optionally with every scaling list present,
 * written field by field after H.264 7.3.2.1.1, then escaped as an encoder would.
 */
function writeH264Sps(fields: { widthInMbs: number; heightInMapUnits: number; crop: readonly [number, number, number, number]; scalingLists?: boolean }): Uint8Array {
  const bits: number[] = [];
  const put = (value: number, count: number): void => {
    for (let i = count - 1; i >= 0; i--) bits.push(Math.floor(value / 2 ** i) % 2);
  };
  const ue = (value: number): void => {
    const length = Math.floor(Math.log2(value + 1));
    put(0, length);
    put(value + 1, length + 1);
  };
  const se = (value: number): void => ue(value > 0 ? 2 * value - 1 : -2 * value);
  put(100, 8); // profile_idc: High
  put(0, 8); // constraint flags
  put(40, 8); // level_idc
  ue(0); // seq_parameter_set_id
  ue(1); // chroma_format_idc: 4:2:0
  ue(0); // bit_depth_luma_minus8
  ue(0); // bit_depth_chroma_minus8
  put(0, 1); // qpprime_y_zero_transform_bypass_flag
  put(fields.scalingLists === true ? 1 : 0, 1); // seq_scaling_matrix_present_flag
  if (fields.scalingLists === true) {
    for (let list = 0; list < 8; list++) {
      put(1, 1); // seq_scaling_list_present_flag
      // Half the list rises by 3, then a delta to nextScale 0 ends it (the rest repeats).
      const half = (list < 6 ? 16 : 64) / 2;
      for (let j = 0; j < half; j++) se(3);
      se(-(8 + 3 * half));
    }
  }
  ue(0); // log2_max_frame_num_minus4
  ue(0); // pic_order_cnt_type
  ue(0); // log2_max_pic_order_cnt_lsb_minus4
  ue(4); // max_num_ref_frames
  put(0, 1); // gaps_in_frame_num_value_allowed_flag
  ue(fields.widthInMbs - 1);
  ue(fields.heightInMapUnits - 1);
  put(1, 1); // frame_mbs_only_flag
  put(1, 1); // direct_8x8_inference_flag
  put(1, 1); // frame_cropping_flag
  for (const offset of fields.crop) ue(offset);
  put(0, 1); // vui_parameters_present_flag
  put(1, 1); // rbsp_stop_one_bit
  while (bits.length % 8 !== 0) bits.push(0);
  const raw: number[] = [0x67];
  for (let i = 0; i < bits.length; i += 8) raw.push(parseInt(bits.slice(i, i + 8).join(''), 2));
  const escaped: number[] = [];
  let zeros = 0;
  for (const byte of raw) {
    if (zeros >= 2 && byte <= 3) {
      escaped.push(3);
      zeros = 0;
    }
    escaped.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(escaped);
}
