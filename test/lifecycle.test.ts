import { spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import path from 'node:path';
import { createLifecycle, requestAborter } from '../src/lifecycle';

// npm test builds dist/ before jest runs
const DIST_LIFECYCLE = path.join(__dirname, '..', 'dist', 'lifecycle.js');

describe('requestAborter', () => {
  it('aborts a running request at shutdown with the shutdown reason', () => {
    const lifecycle = createLifecycle();
    const { controller } = requestAborter(lifecycle);
    lifecycle.cancelInFlight();
    expect(controller.signal.aborted).toBe(true);
    expect(controller.signal.reason).toMatchObject({ code: 'shutting_down' });
  });

  it('starts aborted when the server is already cancelling', () => {
    const lifecycle = createLifecycle();
    lifecycle.cancelInFlight();
    expect(requestAborter(lifecycle).controller.signal.reason).toMatchObject({
      code: 'shutting_down',
    });
  });

  it('takes any number of requests in flight without a MaxListenersExceededWarning', () => {
    // In a plain Node process: jest's sandbox does not pass process warnings on. The control
    // (a bare signal with 11 listeners) shows that the warning would be seen.
    const script = (lifecycle: boolean) => `
      const { createLifecycle, requestAborter } = require(${JSON.stringify(DIST_LIFECYCLE)});
      if (${lifecycle}) { const l = createLifecycle(); for (let i = 0; i < 50; i++) requestAborter(l); }
      else { const c = new AbortController(); for (let i = 0; i < 11; i++) c.signal.addEventListener('abort', () => {}); }`;
    const stderrOf = (lifecycle: boolean) =>
      spawnSync(process.execPath, ['-e', script(lifecycle)], { encoding: 'utf8' }).stderr;
    expect(stderrOf(false)).toContain('MaxListenersExceededWarning');
    expect(stderrOf(true)).not.toContain('MaxListenersExceededWarning');
  });

  it('leaves nothing on the shutdown signal once released, however many requests came', () => {
    const lifecycle = createLifecycle();
    const open = Array.from({ length: 1000 }, () => requestAborter(lifecycle));
    expect(getEventListeners(lifecycle.signal, 'abort')).toHaveLength(1000);
    open.forEach((r) => r.release());
    expect(getEventListeners(lifecycle.signal, 'abort')).toHaveLength(0);
    // a released request no longer hears the shutdown
    lifecycle.cancelInFlight();
    expect(open[0].controller.signal.aborted).toBe(false);
  });
});
