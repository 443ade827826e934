import { decodeBase64, encodeBase64, prepareImage } from '../../src/intake';
import { caseBytes, describeCases, GREY, MAX_PIXELS, rejection } from './helpers';

/** BC-15: strict base64 with the documented variants; positions count in the original text. */

const text = (name: string) => caseBytes(name).toString('utf8');
const decodeImage = (s: string) => decodeBase64(s, { allowDataUrl: true });

describeCases('base64 strings from the shared cases (BC-15)', () => {
  const png = () => caseBytes('bc15-base.png');

  test.each([
    'bc15-plain.b64.txt',
    'bc15-data-url.b64.txt',
    'bc15-wrapped-crlf.b64.txt',
    'bc15-url-safe.b64.txt',
    'bc15-no-padding.b64.txt',
  ])('%s decodes to exactly bc15-base.png', (name) => {
    expect(decodeImage(text(name)).bytes.equals(png())).toBe(true);
  });

  test('the data URL reports its declared type', () => {
    expect(decodeImage(text('bc15-data-url.b64.txt')).declaredType).toBe('image/png');
    expect(decodeImage(text('bc15-plain.b64.txt')).declaredType).toBeUndefined();
  });

  test("a stray '$' is refused naming position 220 (a lenient decoder would skip it)", async () => {
    const s = text('bc15-invalid-char.b64.txt');
    expect(s[220]).toBe('$');
    expect(Buffer.from(s, 'base64').length).toBeGreaterThan(0); // what Node alone would do
    const err = await rejection(() => decodeImage(s));
    expect([err.code, err.httpStatus]).toEqual(['invalid_base64', 400]);
    expect(err.message).toBe("invalid base64 in image: invalid character at position 220: '$'");
    expect(err.details).toEqual({ position: 220, character: '$' });
  });

  test('impossible length (4k+1) is 400 invalid_base64', async () => {
    const err = await rejection(() => decodeImage(text('bc15-bad-length.b64.txt')));
    expect(err.code).toBe('invalid_base64');
    expect(err.message).toMatch(/impossible length: \d+ characters \(4k\+1\)/);
  });

  test('not base64 at all: position 0', async () => {
    const err = await rejection(() => decodeImage(text('bc15-not-base64.b64.txt')));
    expect(err.code).toBe('invalid_base64');
    expect(err.details.position).toBe(0);
  });

  test('empty string is 400 empty_image, not invalid_base64 and not 415', async () => {
    const err = await rejection(() => decodeImage(text('bc15-empty.b64.txt')));
    expect([err.code, err.httpStatus]).toEqual(['empty_image', 400]);
  });

  test('data:text/plain is refused naming text/plain', async () => {
    const err = await rejection(() => decodeImage(text('bc15-data-url-text-plain.b64.txt')));
    expect([err.code, err.httpStatus]).toEqual(['unsupported_media_type', 415]);
    expect(err.message).toMatch(/declares media type text\/plain; only image\/\* data URLs/);
  });

  test('valid base64 of text decodes fine, then sniffing gives 415', async () => {
    const { bytes } = decodeImage(text('bc15-valid-base64-of-text.b64.txt'));
    expect(bytes.toString()).toMatch(/^plain ASCII text/);
    const err = await rejection(() => prepareImage(bytes, GREY, { maxPixels: MAX_PIXELS }));
    expect([err.code, err.httpStatus]).toEqual(['unsupported_image_format', 415]);
  });
});

describe('decodeBase64 rules', () => {
  const data = Buffer.from([0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83, 0xff]); // uses '+', '/' or '-', '_'
  const standard = data.toString('base64'); // '+/+/ABCD/w=='
  const url = data.toString('base64url');

  test('round trip of every length 0..70 through both alphabets, padded and not', () => {
    for (let n = 1; n <= 70; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 97 + n) & 0xff));
      for (const s of [
        bytes.toString('base64'),
        bytes.toString('base64url'),
        bytes.toString('base64').replace(/=+$/, ''),
      ]) {
        expect(decodeBase64(s).bytes.equals(bytes)).toBe(true);
      }
    }
    expect(encodeBase64(data)).toBe(standard);
  });

  test('mixing the two alphabets is refused naming the second one', async () => {
    expect(standard).toMatch(/[+/]/);
    expect(url).toMatch(/[-_]/);
    const mixed = standard.slice(0, 4) + '-' + standard.slice(5);
    const err = await rejection(() => decodeBase64(mixed));
    expect(err.code).toBe('invalid_base64');
    expect(err.message).toMatch(/mixes the standard and URL-safe alphabets: '-' at position 4/);
  });

  test('whitespace anywhere is ignored; positions still count it', async () => {
    const spaced = ` ${standard.slice(0, 4)}\r\n\t${standard.slice(4)} \n`;
    expect(decodeBase64(spaced).bytes.equals(data)).toBe(true);
    const err = await rejection(() => decodeBase64(' \r\nAB*D'));
    expect(err.details).toEqual({ position: 5, character: '*' });
  });

  test.each([
    ['data after padding', 'QUJD=QUJD', /data after '=' padding at position 5/],
    ['wrong padding amount', 'QUI=' + '=', /2 '=' after 3 characters; expected 1/],
    ['three pads', 'QQ===', /too much '=' padding/],
    ['only padding', '====', /too much '=' padding/],
    ['non-ASCII letter', 'QUJDé', /position 4: U\+00E9/],
    ['NUL byte', 'QU\u0000J', /position 2: U\+0000/],
  ])('%s is invalid_base64', async (_name, input, message) => {
    const err = await rejection(() => decodeBase64(input));
    expect(err.code).toBe('invalid_base64');
    expect(err.message).toMatch(message);
  });

  test('whitespace only is empty; a data URL with no payload is empty', async () => {
    expect((await rejection(() => decodeBase64(' \r\n '))).code).toBe('empty_image');
    expect((await rejection(() => decodeImage('data:image/png;base64,'))).code).toBe('empty_image');
  });

  test('data URLs: must be base64, must be image/*, only where allowed', async () => {
    const payload = Buffer.from('\x89PNG', 'latin1').toString('base64');
    expect(decodeImage(`DATA:Image/WebP;base64,${payload}`).declaredType).toBe('image/webp');
    expect(
      decodeImage(`data:image/png;name=a.png;base64,${payload}`).bytes.toString('latin1'),
    ).toBe('\x89PNG');
    const notBase64 = await rejection(() => decodeImage(`data:image/png,${payload}`));
    expect(notBase64.code).toBe('invalid_base64');
    const noType = await rejection(() => decodeImage(`data:;base64,${payload}`));
    expect([noType.code, noType.details.declaredType]).toEqual([
      'unsupported_media_type',
      'text/plain',
    ]);
    const octet = await rejection(() =>
      decodeImage(`data:application/octet-stream;base64,${payload}`),
    );
    expect(octet.message).toMatch(/application\/octet-stream/);
    const noComma = await rejection(() => decodeImage('data:image/png;base64'));
    expect(noComma.code).toBe('invalid_base64');
    const notAllowed = await rejection(() => decodeBase64(`data:image/png;base64,${payload}`));
    expect(notAllowed.message).toMatch(/data URL is not accepted here/);
  });

  test('only space, tab, CR and LF may precede a data URL', async () => {
    const payload = Buffer.from('PNG bytes').toString('base64');
    expect(decodeImage(` \r\n\tdata:image/png;base64,${payload}`).bytes.toString()).toBe(
      'PNG bytes',
    );
    for (const lead of ['\u00a0', '\ufeff', '\u2028', '\u000b', '\u3000']) {
      const err = await rejection(() => decodeImage(`${lead}data:image/png;base64,${payload}`));
      expect([JSON.stringify(lead), err.code, err.details.position]).toEqual([
        JSON.stringify(lead),
        'invalid_base64',
        0,
      ]);
    }
  });

  test('positions in a data URL count the prefix', async () => {
    const err = await rejection(() => decodeImage('data:image/png;base64,QUJD$'));
    expect(err.details.position).toBe(26);
  });

  test('names the field in messages', async () => {
    const err = await rejection(() => decodeBase64('$', { field: 'latent data' }));
    expect(err.message).toBe("invalid base64 in latent data: invalid character at position 0: '$'");
  });

  test('a 4 MB string decodes in well under a second', () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const started = Date.now();
    expect(decodeBase64(big.toString('base64')).bytes.equals(big)).toBe(true);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
