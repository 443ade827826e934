/**
 * A second, independent read of the EXIF Orientation tag (IFD0, tag 0x0112), used only to notice
 * when libvips could not read an orientation that is there, so the client can be warned that the
 * image was used as stored. Handles both byte orders and any tag order; IFD1 (the thumbnail) is
 * deliberately not read - its orientation never applies to the main image.
 */

export type ExifOrientationRead =
  | { status: 'absent' }
  | { status: 'found'; orientation: number }
  | { status: 'unreadable'; problem: string };

const ORIENTATION_TAG = 0x0112;
const SHORT = 3;

/** `exif` is the block sharp reports in metadata().exif ("Exif\0\0" + TIFF structure). */
export function readExifOrientation(exif: Buffer | undefined): ExifOrientationRead {
  if (!exif || exif.length === 0) return { status: 'absent' };
  const unreadable = (problem: string) => ({ status: 'unreadable' as const, problem });
  const head = exif.subarray(0, 6).toString('latin1');
  if (head.startsWith('Exif') && head !== 'Exif\0\0') {
    const hex = exif
      .subarray(0, 6)
      .toString('hex')
      .replace(/(..)(?!$)/g, '$1 ');
    return unreadable(`EXIF header is ${hex}, not "Exif\\0\\0" (45 78 69 66 00 00)`);
  }
  const tiff = head === 'Exif\0\0' ? exif.subarray(6) : exif;
  if (tiff.length < 8) return unreadable('EXIF block shorter than its header');
  const order = tiff.subarray(0, 2).toString('latin1');
  if (order !== 'II' && order !== 'MM') {
    return unreadable(`EXIF byte order ${JSON.stringify(order)} is not II/MM`);
  }
  const le = order === 'II';
  const u16 = (at: number) => (le ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (le ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  if (u16(2) !== 42) return unreadable('EXIF TIFF header lacks the 42 mark');

  const ifd0 = u32(4);
  if (ifd0 < 8 || ifd0 + 2 > tiff.length) {
    return unreadable(`EXIF IFD0 offset ${ifd0} is outside the block`);
  }
  const entries = u16(ifd0);
  if (ifd0 + 2 + entries * 12 > tiff.length) {
    return unreadable(`EXIF IFD0 claims ${entries} entries past the block end`);
  }
  for (let i = 0; i < entries; i++) {
    const entry = ifd0 + 2 + i * 12;
    if (u16(entry) !== ORIENTATION_TAG) continue;
    if (u16(entry + 2) !== SHORT || u32(entry + 4) !== 1) {
      return unreadable('EXIF Orientation tag is not a single SHORT');
    }
    return { status: 'found', orientation: u16(entry + 8) };
  }
  return { status: 'absent' };
}
