/**
 * Runs `check` once after the SDK has applied a frame: the SDK calls the handlers of one frame
 * together, synchronously, once the frame is applied, so a check queued as a microtask by the
 * first handler call runs after the last one. Call the returned function from every handler.
 */
export function perFrame(check: () => void): () => void {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      check();
    });
  };
}
