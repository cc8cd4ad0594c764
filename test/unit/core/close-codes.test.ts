/**
 * Every WebSocket close code the server can send is documented, so the list cannot drift (issue
 * #13, item 7: 1008 was sent but not listed). The codes are gathered from the code itself: the
 * CloseCode table, every numeric literal passed to a `close(` in core/ and services/, and every
 * status ws's receiver attaches to the errors it closes a connection with. Each must have a row in
 * docs/PROTOCOL.md's close-code table and a `const` in schemas/protocol/close-code.schema.json,
 * and neither lists a code the server never sends.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { CloseCode } from '../../../core/messages.ts';

const root = new URL('../../../', import.meta.url).pathname;
const read = (path: string) => readFileSync(join(root, path), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Codes written as literals in a close call (`ws.close(4000, …)`), which would bypass CloseCode. */
function literalCloseCodes(): Map<number, string> {
  const found = new Map<number, string>();
  for (const file of [...sources('core'), ...sources('services')]) {
    for (const m of read(file).matchAll(/\bclose\(\s*(\d{4})\b/g)) found.set(Number(m[1]), file);
  }
  return found;
}

/** Statuses ws's receiver closes a connection with (`createError(Type, message, prefix, status, code)`). */
function wsReceiverCodes(): Set<number> {
  const receiver = readFileSync(join(dirname(createRequire(import.meta.url).resolve('ws')), 'lib/receiver.js'), 'utf8');
  const codes = new Set<number>();
  for (const m of receiver.matchAll(/createError\(\s*\w+,\s*(?:'[^']*'|`[^`]*`|\w+),\s*(?:true|false),\s*(\d{4}),/g)) codes.add(Number(m[1]));
  return codes;
}

function documentedCodes(): { table: number[]; schema: number[] } {
  const doc = read('docs/PROTOCOL.md');
  const section = doc.slice(doc.indexOf('## Close codes'), doc.indexOf('\n## ', doc.indexOf('## Close codes') + 1));
  const table = [...section.matchAll(/^\| (\d{4}) \|/gm)].map((m) => Number(m[1]));
  const schema = (JSON.parse(read('schemas/protocol/close-code.schema.json')) as { oneOf: Array<{ const: number }> }).oneOf.map((o) => o.const);
  return { table, schema };
}

describe('close codes', () => {
  const sent = new Set<number>([...Object.values(CloseCode), ...literalCloseCodes().keys(), ...wsReceiverCodes()]);

  it('are gathered from the code: ours and the ones ws sends', () => {
    for (const code of [1001, 1002, 1007, 1008, 1009, 1011, 4001, 4003, 4008, 4029]) assert.ok(sent.has(code), `${code} is sent`);
    assert.ok(wsReceiverCodes().has(1008), 'ws closes with 1008 for too many fragments');
  });

  it('each have a row in the docs/PROTOCOL.md table and a const in close-code.schema.json, and only those', () => {
    const { table, schema } = documentedCodes();
    const expected = [...sent].sort((a, b) => a - b);
    assert.deepEqual([...table].sort((a, b) => a - b), expected, 'docs/PROTOCOL.md, "Close codes"');
    assert.deepEqual([...schema].sort((a, b) => a - b), expected, 'schemas/protocol/close-code.schema.json');
    assert.equal(new Set(table).size, table.length, 'one row per code');
  });

  it('every one the server sends itself comes from CloseCode, not a literal', () => {
    assert.deepEqual([...literalCloseCodes()], []);
  });

  it('document ws limits behind 1008 as ws applies them', () => {
    const wss = new WebSocketServer({ noServer: true });
    const { maxFragments, maxBufferedChunks } = wss.options as { maxFragments?: number; maxBufferedChunks?: number };
    wss.close();
    const row = read('docs/PROTOCOL.md').split('\n').find((l) => l.startsWith('| 1008 |')) ?? '';
    assert.ok(maxFragments !== undefined && row.includes(maxFragments.toLocaleString('en-US')), `1008 row names maxFragments ${maxFragments}: ${row}`);
    assert.ok(maxBufferedChunks !== undefined && row.includes(maxBufferedChunks.toLocaleString('en-US')), `1008 row names maxBufferedChunks ${maxBufferedChunks}`);
  });
});
