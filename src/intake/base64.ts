import { ServiceError } from '../errors';

/**
 * Strict base64 for images and latents inside JSON. Node's own decoder never throws: it skips
 * characters it does not know and stops at odd lengths, so a damaged string silently becomes a
 * different (shorter) file. Every character is checked here first.
 *
 * Accepted: the RFC 4648 alphabet ('+' '/') or the base64url one ('-' '_'), not both in one
 * string; '=' padding optional, but if present it must be complete and only at the end;
 * whitespace (space, tab, CR, LF - MIME line wrapping) anywhere, ignored; and, where allowed, a
 * data URL `data:image/<type>[;params];base64,<payload>`. Unused bits in the last character are
 * not checked (they cannot change the decoded bytes). Positions in messages count UTF-16 units
 * of the original string, data-URL prefix included.
 */

export interface DecodedBase64 {
  bytes: Buffer;
  /** Media type a data URL declared, lower-cased (e.g. 'image/png'); absent for plain base64. */
  declaredType?: string;
}

export interface DecodeBase64Options {
  /** Accept `data:image/...;base64,` (images: yes; latents: no). */
  allowDataUrl?: boolean;
  /** Names the field in messages, e.g. 'image' or 'latent data'. */
  field?: string;
}

// What each ASCII code is to the decoder; everything else is invalid.
const [INVALID, COMMON, STANDARD, URL_SAFE, PAD, SPACE] = [0, 1, 2, 3, 4, 5];
const CHAR_KIND = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789') {
  CHAR_KIND[ch.charCodeAt(0)] = COMMON;
}
const KINDS = [
  ['+/', STANDARD],
  ['-_', URL_SAFE],
  ['=', PAD],
  [' \t\r\n', SPACE],
] as const;
for (const [chars, kind] of KINDS) for (const ch of chars) CHAR_KIND[ch.charCodeAt(0)] = kind;
const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*),/i;

/** Shows one character safely in a message: '$', or U+0000 for controls and odd code points. */
function showChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  if (code >= 0x21 && code <= 0x7e) return `'${ch}'`;
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

function invalid(field: string, message: string, details: Record<string, unknown>): ServiceError {
  return new ServiceError('invalid_base64', `invalid base64 in ${field}: ${message}`, details);
}

/** Splits off a data-URL prefix, checking that it declares base64 and an image type. */
function splitDataUrl(text: string, field: string): { start: number; declaredType: string } {
  const m = DATA_URL.exec(text);
  if (!m) throw invalid(field, "data URL has no ',' before its payload", { position: 0 });
  const declaredType = m[1].trim().toLowerCase().slice(0, 100); // echoed in messages: keep short
  const params = m[2].split(';').map((p) => p.trim().toLowerCase());
  if (!params.includes('base64')) {
    throw invalid(field, `data URL is not base64-encoded (no ';base64' before ',')`, {
      declaredType,
    });
  }
  if (!declaredType.startsWith('image/')) {
    // RFC 2397: a data URL with no type means text/plain.
    const shown = declaredType || 'text/plain (no type given)';
    throw new ServiceError(
      'unsupported_media_type',
      `${field} data URL declares media type ${shown}; only image/* data URLs are accepted`,
      { declaredType: declaredType || 'text/plain' },
    );
  }
  return { start: m[0].length, declaredType };
}

/**
 * Decodes base64 text strictly, or throws ServiceError: empty_image (nothing to decode),
 * invalid_base64 (naming the position and character), unsupported_media_type (data URL of a
 * non-image type).
 * @example decodeBase64('data:image/png;base64,iVBORw0KGgo=', { allowDataUrl: true }).bytes
 */
export function decodeBase64(text: string, opts: DecodeBase64Options = {}): DecodedBase64 {
  const field = opts.field ?? 'image';
  let start = 0;
  let declaredType: string | undefined;
  // Only the whitespace the payload may hold (space, tab, CR, LF) may precede a data URL:
  // \s would also let no-break spaces, BOMs and line separators through.
  const dataUrl = /^[ \t\r\n]*data:/i.exec(text);
  if (dataUrl) {
    if (!opts.allowDataUrl) {
      throw invalid(field, 'a data URL is not accepted here; send plain base64', { position: 0 });
    }
    const leading = dataUrl[0].length - 'data:'.length;
    const split = splitDataUrl(text.slice(leading), field);
    start = leading + split.start;
    declaredType = split.declaredType;
  }

  let n = 0; // data characters seen
  let padding = 0;
  let standardAt = -1; // first '+' or '/'
  let urlAt = -1; // first '-' or '_'
  for (let i = start; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const kind = code < 128 ? CHAR_KIND[code] : INVALID;
    if (kind === SPACE) continue;
    if (kind === PAD) {
      padding++;
      if (padding > 2) {
        throw invalid(field, `too much '=' padding at position ${i}`, { position: i });
      }
      continue;
    }
    if (kind === INVALID) {
      const ch = String.fromCodePoint(text.codePointAt(i) ?? code);
      throw invalid(field, `invalid character at position ${i}: ${showChar(ch)}`, {
        position: i,
        character: ch,
      });
    }
    if (padding > 0) {
      throw invalid(field, `data after '=' padding at position ${i}: ${showChar(text[i])}`, {
        position: i,
        character: text[i],
      });
    }
    if (kind === STANDARD && standardAt < 0) standardAt = i;
    if (kind === URL_SAFE && urlAt < 0) urlAt = i;
    if (kind !== COMMON && standardAt >= 0 && urlAt >= 0) {
      const [first, second] = standardAt < urlAt ? [standardAt, urlAt] : [urlAt, standardAt];
      throw invalid(
        field,
        `mixes the standard and URL-safe alphabets: ${showChar(text[second])} at position ` +
          `${second} after ${showChar(text[first])} at position ${first}`,
        { position: second, character: text[second] },
      );
    }
    n++;
  }

  if (n === 0) {
    throw new ServiceError('empty_image', `${field} is empty: the base64 text holds no data`, {
      bytes: 0,
    });
  }
  if (n % 4 === 1) {
    throw invalid(field, `impossible length: ${n} characters (4k+1) cannot encode whole bytes`, {
      length: n,
    });
  }
  const expectedPadding = (4 - (n % 4)) % 4;
  if (padding > 0 && padding !== expectedPadding) {
    throw invalid(field, `${padding} '=' after ${n} characters; expected ${expectedPadding}`, {
      length: n,
      padding,
    });
  }

  const payload = text.slice(start).replace(/[ \t\r\n=]/g, '');
  const bytes = Buffer.from(payload, urlAt >= 0 ? 'base64url' : 'base64');
  const expectedBytes = Math.floor((n * 3) / 4);
  if (bytes.length !== expectedBytes) {
    // Cannot happen after the checks above; kept so a Node change can never pass a short buffer.
    const got = bytes.length;
    throw new ServiceError('internal', `base64 decoded to ${got} bytes, expected ${expectedBytes}`);
  }
  return declaredType === undefined ? { bytes } : { bytes, declaredType };
}

/** Plain RFC 4648 base64 with padding, for replies. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
