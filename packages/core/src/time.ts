/** Resolves after ms, or early (without throwing) when the signal aborts: callers check the signal. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    // A deadline just passed gives a negative ms: Node 24 warns about it (TimeoutNegativeWarning).
    const timer = setTimeout(done, Math.max(ms, 0));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Exponential back-off with jitter in the upper half: [d/2, d], d = min(max, initial·2^(attempt-1)),
 * attempt counting from 1. The jitter spreads workers that failed together; the lower bound keeps
 * a retry from coming back at once.
 */
export function backoff(attempt: number, initialMs: number, maxMs: number): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.min(30, attempt - 1));
  return Math.round(d / 2 + Math.random() * (d / 2));
}
