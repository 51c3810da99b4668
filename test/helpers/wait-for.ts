// Polls until a condition holds: the value `fn` resolves to once it is truthy.

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 30_000, intervalMs = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
