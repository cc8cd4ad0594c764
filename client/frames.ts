/**
 * Reads server frames: each is a JSON array of messages (docs/PROTOCOL.md). Messages of a type
 * this client does not know are skipped, as the protocol asks, so a newer server stays readable;
 * a known type with the wrong shape is an error rather than a silent corruption of topic state.
 */
import type { ServerMessage } from '../core/messages.ts';

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

type Shape = Record<string, 'string' | 'number' | 'object' | 'array'>;

const SHAPES: Record<ServerMessage['type'], Shape> = {
  hello: { protocol: 'number', epoch: 'string' },
  value: { path: 'string', version: 'number', value: 'object' },
  delta: { path: 'string', version: 'number', patch: 'array' },
  removal: { path: 'string', version: 'number' },
  loading: { id: 'string', sent: 'number', total: 'number' },
  subscribed: { id: 'string', selector: 'string', topics: 'number' },
  unsubscribed: { id: 'string' },
  pong: {},
  authenticated: {},
  error: { code: 'string', message: 'string' },
  txn: { seq: 'number', part: 'number', parts: 'number' },
  status: { id: 'string' },
  position: { seq: 'number' },
};

function hasShape(m: Record<string, unknown>, shape: Shape): boolean {
  for (const key in shape) {
    const v = m[key];
    const want = shape[key];
    if (want === 'array' ? !Array.isArray(v) : want === 'object' ? typeof v !== 'object' || v === null || Array.isArray(v) : typeof v !== want) {
      return false;
    }
  }
  return true;
}

/** Parses one frame into the messages this client understands; throws FrameError when the frame is not valid. */
export function parseFrame(data: unknown): ServerMessage[] {
  if (typeof data !== 'string') throw new FrameError('the server sent a binary frame; tidewire frames are JSON text');
  let batch: unknown;
  try {
    batch = JSON.parse(data);
  } catch {
    throw new FrameError('the server sent a frame that is not JSON');
  }
  if (!Array.isArray(batch)) throw new FrameError('the server sent a frame that is not a JSON array of messages');
  const out: ServerMessage[] = [];
  for (const m of batch as unknown[]) {
    if (typeof m !== 'object' || m === null) throw new FrameError('a message in the frame is not an object');
    const type = (m as { type?: unknown }).type;
    if (typeof type !== 'string' || !Object.hasOwn(SHAPES, type)) continue;
    if (!hasShape(m as Record<string, unknown>, SHAPES[type as ServerMessage['type']])) {
      throw new FrameError(`a "${type}" message is missing a field or has one of the wrong type`);
    }
    out.push(m as ServerMessage);
  }
  return out;
}
