// The event bus behind the SSE streams. A stream (one kind in one namespace) is an ordered
// log of events with ids "<a>-<b>" that increase; a bounded history serves Last-Event-ID
// resumes. `lead` says whether this replica should run the stream's watch: always in
// process; with Redis, one replica at a time holds a lease (see redisbus.ts).

export interface StreamEvent {
  id: string;
  type: string;
  /** JSON text of the payload. */
  data: string;
}

export type Listener = (event: StreamEvent) => void;

export interface EventBus {
  /** Appends an event (and remembers the watch position `resourceVersion`). */
  publish(stream: string, type: string, data: string, resourceVersion: string): Promise<void>;
  subscribe(stream: string, listener: Listener): Promise<() => void>;
  /** Events after `lastId`, or undefined when they are no longer all known (the client must re-list). */
  since(stream: string, lastId: string): Promise<StreamEvent[] | undefined>;
  /** Takes or renews the right to run this stream's watch; false while another replica has it. */
  lead(stream: string, ttlMs: number): Promise<boolean>;
  release(stream: string): Promise<void>;
  /** The resourceVersion of the last published event, to resume a watch where it stopped. */
  position(stream: string): Promise<string | undefined>;
  /** False while the bus cannot serve streams (its Redis is unreachable). */
  available(): boolean;
  close(): Promise<void>;
}

/** Compares two event ids "<a>-<b>" numerically; NaN when either is malformed. */
export function compareIds(x: string, y: string): number {
  const [a1, b1] = x.split("-").map(Number);
  const [a2, b2] = y.split("-").map(Number);
  if ([a1, b1, a2, b2].some((n) => n === undefined || !Number.isSafeInteger(n))) return NaN;
  return a1! - a2! || b1! - b2!;
}

export const validId = (id: string): boolean => /^\d{1,15}-\d{1,15}$/.test(id);

interface MemoryStream {
  seq: number;
  history: StreamEvent[];
  listeners: Set<Listener>;
  position: string | undefined;
}

export class MemoryBus implements EventBus {
  private readonly streams = new Map<string, MemoryStream>();
  private readonly historySize: number;
  private readonly epoch = Date.now();

  constructor(historySize = 1000) {
    this.historySize = historySize;
  }

  private stream(name: string): MemoryStream {
    let s = this.streams.get(name);
    if (!s) {
      s = { seq: 0, history: [], listeners: new Set(), position: undefined };
      this.streams.set(name, s);
    }
    return s;
  }

  publish(stream: string, type: string, data: string, resourceVersion: string): Promise<void> {
    const s = this.stream(stream);
    const event = { id: `${this.epoch}-${++s.seq}`, type, data };
    s.history.push(event);
    if (s.history.length > this.historySize) s.history.splice(0, s.history.length - this.historySize);
    s.position = resourceVersion;
    for (const l of s.listeners) l(event);
    return Promise.resolve();
  }

  subscribe(stream: string, listener: Listener): Promise<() => void> {
    const s = this.stream(stream);
    s.listeners.add(listener);
    return Promise.resolve(() => void s.listeners.delete(listener));
  }

  since(stream: string, lastId: string): Promise<StreamEvent[] | undefined> {
    const s = this.stream(stream);
    const [epoch, seq] = lastId.split("-").map(Number);
    if (epoch !== this.epoch || seq === undefined || !Number.isSafeInteger(seq) || seq > s.seq)
      return Promise.resolve(undefined);
    const first = s.history[0];
    const firstSeq = first ? Number(first.id.split("-")[1]) : s.seq + 1;
    if (firstSeq > seq + 1) return Promise.resolve(undefined);
    return Promise.resolve(s.history.filter((e) => Number(e.id.split("-")[1]) > seq));
  }

  lead(): Promise<boolean> {
    return Promise.resolve(true);
  }

  available(): boolean {
    return true;
  }

  release(): Promise<void> {
    return Promise.resolve();
  }

  position(stream: string): Promise<string | undefined> {
    return Promise.resolve(this.streams.get(stream)?.position);
  }

  close(): Promise<void> {
    this.streams.clear();
    return Promise.resolve();
  }
}
