/** Every topic's epoch and version as a running node serves it (GET /topics/<path>): `epoch/version`, or the HTTP status. */
export async function topicVersions(node: { readonly port: number }, paths: Iterable<string>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const path of paths) {
    const r = await fetch(`http://127.0.0.1:${node.port}/topics/${path}`);
    const body = (await r.json()) as { version?: number; epoch?: string };
    out[path] = r.status === 200 ? `${body.epoch}/${body.version}` : String(r.status);
  }
  return out;
}
