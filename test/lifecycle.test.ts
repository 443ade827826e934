import { getEventListeners, getMaxListeners } from 'node:events';
import { createLifecycle, requestAborter } from '../src/lifecycle';

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
    // (jest's sandbox does not pass process warnings on, so the setting itself is checked)
    expect(getMaxListeners(createLifecycle().signal)).toBe(0); // 0 = unlimited
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
