/**
 * JPEGs that end without their EOI marker (FF D9). Some encoders and upload paths drop the last
 * two bytes of an otherwise complete file; libjpeg then reports "premature end of JPEG image",
 * which sharp's failOn: 'warning' turns into an error - exactly as for a file cut mid-scan.
 *
 * Policy: walk the marker structure. If the file is single-scan sequential (SOF0/SOF1, one SOS
 * covering every component) and ends inside that scan's entropy-coded data, append FF D9 and
 * decode as usual under failOn: 'warning'. If bytes are really missing, the decoder now meets
 * the marker before the last MCU and warns "premature end of data segment", which still fails,
 * so truncated data never passes. Progressive and multi-scan files are never repaired: a file
 * cut between two scans would decode cleanly at lower quality, so there a missing EOI stays a
 * 422.
 */

const EOI = Buffer.from([0xff, 0xd9]);
const SEQUENTIAL_SOF = new Set([0xc0, 0xc1]);
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
const isStandalone = (m: number) => (m >= 0xd0 && m <= 0xd7) || m === 0x01; // RSTn, TEM

type Ending = 'complete' | 'missing-eoi-repairable' | 'missing-eoi' | 'unknown';

/** Where a JPEG's structure ends: with an EOI, inside scan data, or somewhere we cannot tell. */
export function jpegEnding(bytes: Buffer): Ending {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return 'unknown';
  let pos = 2;
  let sof = -1;
  let frameComponents = -1;
  let scans = 0;
  while (pos < bytes.length) {
    if (bytes[pos] !== 0xff) return 'unknown';
    while (pos < bytes.length && bytes[pos] === 0xff) pos++; // fill bytes
    if (pos >= bytes.length) return 'unknown';
    const marker = bytes[pos++];
    if (marker === 0xd9) return 'complete';
    if (isStandalone(marker)) continue;
    if (pos + 2 > bytes.length) return 'unknown';
    const length = bytes.readUInt16BE(pos);
    if (length < 2 || pos + length > bytes.length) return 'unknown';
    if (isSof(marker) && length >= 8) {
      sof = marker;
      frameComponents = bytes[pos + 7];
    }
    if (marker !== 0xda) {
      pos += length;
      continue;
    }
    scans++;
    const scanComponents = bytes[pos + 2];
    pos += length;
    // Entropy-coded data: runs until a marker other than stuffed FF 00 or RSTn.
    while (pos < bytes.length) {
      if (bytes[pos] === 0xff && pos + 1 < bytes.length) {
        const next = bytes[pos + 1];
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) {
          pos += next === 0xff ? 1 : 2;
          continue;
        }
        break;
      }
      pos++;
    }
    if (pos >= bytes.length) {
      const single = scans === 1 && SEQUENTIAL_SOF.has(sof) && scanComponents === frameComponents;
      return single ? 'missing-eoi-repairable' : 'missing-eoi';
    }
  }
  return 'missing-eoi';
}

/** The bytes with FF D9 appended when the policy above allows it; otherwise unchanged. */
export function repairMissingEoi(bytes: Buffer): { bytes: Buffer; repaired: boolean } {
  if (jpegEnding(bytes) !== 'missing-eoi-repairable') return { bytes, repaired: false };
  return { bytes: Buffer.concat([bytes, EOI]), repaired: true };
}
