import { clip, ERROR_CATALOG, logLevelOf, type ErrorCode } from '../src/errors';

describe('logLevelOf', () => {
  it('logs only server faults at error; load shedding and diverged sampling at warn; the rest at info', () => {
    const levels = Object.fromEntries(
      (Object.keys(ERROR_CATALOG) as ErrorCode[]).map((code) => [code, logLevelOf(code)]),
    );
    expect(Object.keys(levels).filter((c) => levels[c] === 'error')).toEqual([
      'inference_failed',
      'internal',
    ]);
    expect(Object.keys(levels).filter((c) => levels[c] === 'warn')).toEqual([
      'generation_diverged',
      'queue_full',
      'generation_timeout',
    ]);
    expect(levels.not_ready).toBe('info');
    expect(levels.cancelled).toBe('info');
  });

  it('falls back to the status when there is no code', () => {
    expect(logLevelOf(undefined, 200)).toBe('info');
    expect(logLevelOf(undefined, 502)).toBe('error');
  });
});

describe('clip', () => {
  it('never cuts a surrogate pair and never returns a lone surrogate', () => {
    const emoji = '\u{1F600}';
    for (const text of [
      'x' + emoji.repeat(50),
      emoji.repeat(50),
      'a\ud83db',
      '\udc00' + 'y'.repeat(20),
    ]) {
      for (const max of [1, 2, 5, 10, 11]) {
        const out = clip(text, max);
        expect([text, max, out.isWellFormed()]).toEqual([text, max, true]);
      }
    }
    expect(clip('x' + emoji.repeat(3), 2)).toBe('x... (6 more characters)');
    expect(clip('short', 10)).toBe('short');
  });
});
