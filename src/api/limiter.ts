/**
 * At most `slots` tasks at a time, the rest queued in arrival order. Used to bound how many
 * images are decoded at once across all requests: each decode can hold up to MAX_IMAGE_PIXELS
 * of pixels, and decodes running on every core at once starve the event loop (and /healthz).
 */
export function createLimiter(slots: number) {
  let running = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    running--;
    queue.shift()?.();
  };
  return async function limited<T>(task: () => Promise<T>): Promise<T> {
    if (running >= slots) await new Promise<void>((resolve) => queue.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      release();
    }
  };
}
