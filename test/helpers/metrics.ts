// Reading a Prometheus text exposition (GET /metrics) in tests.

/** The value of the sample `name{labels}` (labels in any order), or 0 when it is absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g)?.sort().join(',') ?? '';
    if (have === wanted) return Number(m[3]);
  }
  return 0;
}
