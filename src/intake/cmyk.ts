/**
 * CMYK JPEGs and their embedded ICC profiles. libvips converts CMYK to sRGB with the embedded
 * profile when lcms accepts it, with its generic CMYK profile when there is none, and passes
 * over some damaged profiles silently while failing on others ("ColorSpace mismatch").
 * Rather than guess which way libvips went, intake decides: a profile that fails these checks
 * is removed from the bytes before decoding, so the generic profile is used, and the warning
 * says so and why.
 */

const HEADER_BYTES = 128;
const TAG_BYTES = 12;
/** Tags that map CMYK into the profile connection space (perceptual, colorimetric, saturation). */
const INPUT_TAGS = new Set(['A2B0', 'A2B1', 'A2B2']);

/** Why an embedded profile cannot convert this image's CMYK to sRGB, or undefined if it can. */
export function cmykProfileProblem(icc: Buffer): string | undefined {
  if (icc.length < HEADER_BYTES + 4 || icc.readUInt32BE(0) !== icc.length) {
    return 'is damaged (its size field does not match its length)';
  }
  if (icc.toString('latin1', 36, 40) !== 'acsp') return "is damaged (no 'acsp' signature)";
  const space = icc.toString('latin1', 16, 20).trim();
  if (space !== 'CMYK') return `is for ${space || 'an unnamed colour space'}, not CMYK`;
  const pcs = icc.toString('latin1', 20, 24);
  if (pcs !== 'XYZ ' && pcs !== 'Lab ')
    return `is damaged (connection space ${JSON.stringify(pcs)})`;
  const major = icc[8];
  if (major < 2 || major > 4) return `is damaged (version ${major})`;
  const count = icc.readUInt32BE(HEADER_BYTES);
  if (count === 0 || HEADER_BYTES + 4 + count * TAG_BYTES > icc.length) {
    return `is damaged (tag table of ${count} entries)`;
  }
  let input = false;
  for (let i = 0; i < count; i++) {
    const at = HEADER_BYTES + 4 + i * TAG_BYTES;
    const [offset, size] = [icc.readUInt32BE(at + 4), icc.readUInt32BE(at + 8)];
    if (offset < HEADER_BYTES || offset + size > icc.length)
      return 'is damaged (a tag runs past its end)';
    if (INPUT_TAGS.has(icc.toString('latin1', at, at + 4))) input = true;
  }
  return input ? undefined : 'has no CMYK-to-PCS (A2B) table';
}

/** The warning for a CMYK image: which profile converted it, and why when not its own. */
export function cmykWarning(icc: Buffer | undefined, problem: string | undefined): string {
  if (!icc) return 'CMYK image without an ICC profile converted to sRGB with a generic profile';
  if (!problem) return 'CMYK image converted to sRGB with its embedded ICC profile';
  return `CMYK image converted to sRGB with a generic profile: its embedded ICC profile ${problem}`;
}
