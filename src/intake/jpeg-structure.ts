/**
 * JPEG marker structure, read before any decoder runs: one walk over the segments and scans
 * answers two questions libjpeg cannot answer for us.
 *
 * 1. Does the file end without its EOI marker (FF D9)? Some encoders and upload paths drop the
 *    last two bytes of an otherwise complete file; libjpeg then reports "premature end of JPEG
 *    image", which sharp's failOn: 'warning' turns into an error - exactly as for a file cut
 *    mid-scan. If the file is single-scan sequential (SOF0/SOF1, one SOS covering every
 *    component) and ends inside that scan's entropy-coded data, FF D9 is appended and the file
 *    decoded under the same strict failOn: if bytes are really missing, the decoder meets the
 *    marker before the last MCU and still fails. Other files missing EOI are refused.
 *
 * 2. Do the scans cover every component? A file cut between two scans, with EOI put back, is
 *    structurally valid and decodes without a warning at lower quality, or with a channel
 *    missing. The standard's floor is the rule libjpeg's encoder checks: a sequential file
 *    scans every component once; a progressive one sends at least some DC data for each
 *    component, and need not send every bit of every coefficient. Below that floor the file is
 *    refused; a progressive file that leaves some coefficient (k of component c) short of its
 *    last bit (Al = 0) is legal, e.g. a DC-only preview, but cannot be told from one cut
 *    between scans, so it is accepted with a warning.
 */

const EOI = Buffer.from([0xff, 0xd9]);
const SOS = 0xda;
const APP2 = 0xe2;
const ICC_TAG = 'ICC_PROFILE\0';
const SEQUENTIAL_SOF = new Set([0xc0, 0xc1]);
/** DCT frames whose scans we can account for: sequential and progressive, Huffman or arithmetic. */
const DCT_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc9, 0xca]);
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
const isStandalone = (m: number) => (m >= 0xd0 && m <= 0xd7) || m === 0x01; // RSTn, TEM

type Ending = 'complete' | 'missing-eoi-repairable' | 'missing-eoi' | 'unknown';

interface Scan {
  components: number[];
  /** Spectral selection start / end and successive-approximation high and low bits. */
  ss: number;
  se: number;
  ah: number;
  al: number;
}

export interface JpegWalk {
  ending: Ending;
  /** Set when the file has more than MAX_SCANS scans: the walk stopped there. */
  tooManyScans?: true;
  sof: number;
  /** The frame size the first SOF states (0 x 0 when there is none). */
  width: number;
  height: number;
  /** Component ids of the frame (from the first SOF). */
  components: number[];
  scans: Scan[];
  /** [start, end) of each APP2 ICC_PROFILE segment, marker included. */
  iccSegments: Array<[number, number]>;
}

/** Skips a scan's entropy-coded data: it runs until a marker other than FF 00 or RSTn. */
function skipEntropyCoded(bytes: Buffer, from: number): number {
  // indexOf is native: a 19 MB scan is crossed in a few milliseconds, not forty
  for (let pos = bytes.indexOf(0xff, from); pos !== -1; pos = bytes.indexOf(0xff, pos)) {
    if (pos + 1 >= bytes.length) break;
    const next = bytes[pos + 1];
    if (next === 0xff)
      pos += 1; // fill byte before a marker
    else if (next === 0x00 || (next >= 0xd0 && next <= 0xd7))
      pos += 2; // stuffed FF, RSTn
    else return pos;
  }
  return bytes.length;
}

/** Far more than any encoder writes (libjpeg's progressive scripts use 10 or so); a file of
 * thousands of empty scans costs the decoder seconds and is refused here. */
export const MAX_SCANS = 1000;

// Three steps of intake read one file's structure (sizes, coverage, EOI); walk it once.
const walks = new WeakMap<Buffer, JpegWalk>();

export function walkJpeg(bytes: Buffer): JpegWalk {
  let walk = walks.get(bytes);
  if (!walk) walks.set(bytes, (walk = walkOnce(bytes)));
  return walk;
}

function walkOnce(bytes: Buffer): JpegWalk {
  const walk: JpegWalk = {
    ending: 'unknown',
    sof: -1,
    width: 0,
    height: 0,
    components: [],
    scans: [],
    iccSegments: [],
  };
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return walk;
  let pos = 2;
  while (pos < bytes.length) {
    if (bytes[pos] !== 0xff) return walk;
    while (pos < bytes.length && bytes[pos] === 0xff) pos++; // fill bytes
    if (pos >= bytes.length) return walk;
    const marker = bytes[pos++];
    if (marker === 0xd9) return { ...walk, ending: 'complete' };
    if (isStandalone(marker)) continue;
    if (pos + 2 > bytes.length) return walk;
    const length = bytes.readUInt16BE(pos);
    if (length < 2 || pos + length > bytes.length) return walk;
    if (isSof(marker) && walk.sof === -1 && length >= 8) {
      walk.sof = marker;
      [walk.height, walk.width] = [bytes.readUInt16BE(pos + 3), bytes.readUInt16BE(pos + 5)];
      const count = bytes[pos + 7];
      for (let i = 0; i < count && 8 + 3 * i < length; i++) {
        walk.components.push(bytes[pos + 8 + 3 * i]);
      }
    }
    if (marker === APP2 && bytes.toString('latin1', pos + 2, pos + 14) === ICC_TAG) {
      walk.iccSegments.push([pos - 2, pos + length]);
    }
    if (marker === SOS && walk.scans.length === MAX_SCANS) return { ...walk, tooManyScans: true };
    if (marker === SOS && length >= 3) {
      const count = bytes[pos + 2];
      const components: number[] = [];
      for (let i = 0; i < count && 3 + 2 * i < length; i++) components.push(bytes[pos + 3 + 2 * i]);
      const tail = pos + 3 + 2 * count;
      if (tail + 3 <= pos + length) {
        walk.scans.push({
          components,
          ss: bytes[tail],
          se: bytes[tail + 1],
          ah: bytes[tail + 2] >> 4,
          al: bytes[tail + 2] & 15,
        });
      }
      pos = skipEntropyCoded(bytes, pos + length);
      if (pos >= bytes.length) break;
      continue;
    }
    pos += length;
  }
  const last = walk.scans[walk.scans.length - 1];
  const single =
    walk.scans.length === 1 &&
    SEQUENTIAL_SOF.has(walk.sof) &&
    last.components.length === walk.components.length;
  return { ...walk, ending: single ? 'missing-eoi-repairable' : 'missing-eoi' };
}

/** Where a JPEG's structure ends: with an EOI, inside scan data, or somewhere we cannot tell. */
export function jpegEnding(bytes: Buffer): Ending {
  return walkJpeg(bytes).ending;
}

/** The bytes with FF D9 appended when the policy above allows it; otherwise unchanged. */
export function repairMissingEoi(bytes: Buffer): { bytes: Buffer; repaired: boolean } {
  if (jpegEnding(bytes) !== 'missing-eoi-repairable') return { bytes, repaired: false };
  return { bytes: Buffer.concat([bytes, EOI]), repaired: true };
}

/** The JPEG without its APP2 ICC_PROFILE segments (everything else byte for byte). */
export function withoutIccProfile(bytes: Buffer): Buffer {
  const kept: Buffer[] = [];
  let from = 0;
  for (const [start, end] of walkJpeg(bytes).iccSegments) {
    kept.push(bytes.subarray(from, start));
    from = end;
  }
  return Buffer.concat([...kept, bytes.subarray(from)]);
}

const PROGRESSIVE_SOF = new Set([0xc2, 0xca]);
const EARLY = ' (the file ends early, or is damaged)';

export interface ScanCoverage {
  /** Below the standard's floor: a component never scanned (sequential) or with no DC data. */
  fault?: string;
  /** Legal but partial: the first coefficient no scan codes to its last bit. */
  partial?: string;
}

/**
 * How completely the scans cover the frame. Nothing is said of frames we do not account for,
 * nor of a file whose segments could not be followed (the decoder names that fault better).
 */
export function scanCoverage(walk: JpegWalk): ScanCoverage {
  if (walk.tooManyScans) return { fault: `it has more than ${MAX_SCANS} scans` };
  if (walk.ending === 'unknown') return {};
  if (!DCT_SOF.has(walk.sof) || walk.components.length === 0) return {};
  const done = new Map(walk.components.map((id) => [id, new Uint8Array(64)]));
  const touched = new Map(walk.components.map((id) => [id, new Uint8Array(64)]));
  for (const scan of walk.scans) {
    const last = Math.min(scan.se, 63) + 1;
    for (const id of scan.components) {
      // first passes (Ah = 0) send data; a refinement alone refines nothing
      if (scan.ah === 0) touched.get(id)?.fill(1, scan.ss, last);
      if (scan.al === 0) done.get(id)?.fill(1, scan.ss, last);
    }
  }
  const name = (index: number, id: number) => `component ${index + 1} (id ${id})`;
  const progressive = PROGRESSIVE_SOF.has(walk.sof);
  for (const [index, id] of walk.components.entries()) {
    if (!touched.get(id)![0]) {
      const what = progressive ? 'no scan sends DC data for' : 'no scan codes';
      return { fault: `${what} ${name(index, id)}${EARLY}` };
    }
  }
  for (const [index, id] of walk.components.entries()) {
    const k = done.get(id)!.indexOf(0);
    if (k === -1) continue;
    const where = `coefficient ${k} of ${name(index, id)}`;
    return progressive ? { partial: where } : { fault: `no scan completes ${where}${EARLY}` };
  }
  return {};
}
