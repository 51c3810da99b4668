// Cross-process events on PostgreSQL LISTEN/NOTIFY: every API process (and worker) holds one
// dedicated connection that LISTENs; `publish` is `pg_notify`, so an event sent inside a
// transaction goes out only when it commits. Payloads are small JSON (IDs and deltas) and are
// fanned out to local async-iterator subscribers with bounded buffers.
//
// Delivery is at-most-once: while the listening connection is down (it reconnects with
// backoff and re-LISTENs), events are missed. Subscribers resolve current state from the
// database, so a missed progress event is made good by the next one.
import { EventEmitter } from 'node:events';
import pg from 'pg';

/** PostgreSQL's NOTIFY payload limit is 8000 bytes. */
export const MAX_PAYLOAD_BYTES = 7999;

/** Runs SQL on some connection — e.g. a MikroORM EntityManager inside a transaction. */
export type SqlExecutor = { execute(sql: string, params: unknown[]): Promise<unknown> };

export class PubSubError extends Error {
  static payloadTooLarge(channel: string, bytes: number) {
    return new PubSubError(`event on ${channel} is ${bytes} bytes; NOTIFY payloads must stay under 8000`);
  }
  static badChannel(channel: string) {
    return new PubSubError(`invalid channel name ${JSON.stringify(channel)}`);
  }
  static closed() {
    return new PubSubError('pub/sub is closed');
  }
}

export type SubscribeOptions<T> = {
  /** Events that do not pass are dropped before they reach the buffer (cheap filtering). */
  filter?: (event: T) => boolean;
  /** Events kept while the consumer is slow; the oldest are dropped beyond it. */
  bufferSize?: number;
};

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

function checkChannel(channel: string) {
  if (!CHANNEL.test(channel)) throw PubSubError.badChannel(channel);
}

export function encodeEvent(channel: string, event: unknown): string {
  checkChannel(channel);
  const payload = JSON.stringify(event);
  const bytes = Buffer.byteLength(payload);
  if (bytes > MAX_PAYLOAD_BYTES) throw PubSubError.payloadTooLarge(channel, bytes);
  return payload;
}

/** NOTIFY through `executor`'s connection: inside a transaction the event leaves on commit. */
export async function notify(executor: SqlExecutor, channel: string, event: unknown): Promise<void> {
  await executor.execute('select pg_notify(?, ?)', [channel, encodeEvent(channel, event)]);
}

export type PubSubOptions = {
  /** Reconnect delays grow from `minBackoffMs` to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  onError?: (error: Error) => void;
};

export class PgPubSub {
  private listener: pg.Client | null = null;
  private readonly channels = new Set<string>();
  private readonly local = new EventEmitter();
  private readonly publisher: pg.Pool;
  private connecting: Promise<void> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private closed = false;
  /** Counts (re)connections of the listening client; tests and health checks read it. */
  connections = 0;

  constructor(
    private readonly databaseUrl: string,
    private readonly options: PubSubOptions = {},
  ) {
    this.local.setMaxListeners(0);
    this.backoffMs = options.minBackoffMs ?? 100;
    this.publisher = new pg.Pool({ connectionString: databaseUrl, max: 2, idleTimeoutMillis: 10_000 });
    this.publisher.on('error', (e) => this.reportError(e));
  }

  /** Connects the listening client (done lazily by the first subscription too). */
  async start(): Promise<void> {
    if (this.closed) throw PubSubError.closed();
    if (this.listener) return;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    await this.connecting;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', (msg) => this.deliver(msg.channel, msg.payload));
    client.on('error', (e) => {
      this.reportError(e);
      this.lost(client);
    });
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    } catch (e) {
      client.removeAllListeners('end');
      client.end().catch(() => {});
      throw e;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.listener = client;
    this.connections++;
    this.backoffMs = this.options.minBackoffMs ?? 100;
  }

  private lost(client: pg.Client) {
    if (this.listener !== client) return;
    this.listener = null;
    this.scheduleReconnect();
  }

  private scheduleReconnect() {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 5000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.start().catch((e) => {
        this.reportError(e);
        this.scheduleReconnect();
      });
    }, delay);
    this.reconnectTimer.unref();
  }

  private reportError(e: Error) {
    if (this.closed) return;
    this.options.onError?.(e);
  }

  private deliver(channel: string, payload: string | undefined) {
    let event: unknown;
    try {
      event = JSON.parse(payload ?? 'null');
    } catch {
      return; // not ours: every publisher here sends JSON
    }
    this.local.emit(channel, event);
  }

  private async listen(channel: string) {
    checkChannel(channel);
    if (this.channels.has(channel)) return this.start();
    this.channels.add(channel);
    await this.start();
    // A reconnect that raced with us already LISTENed every channel in the set; LISTEN twice is harmless.
    await this.listener?.query(`LISTEN ${channel}`);
  }

  /** Publishes on the pub/sub's own connection (outside any transaction: goes out at once). */
  async publish(channel: string, event: unknown): Promise<void> {
    if (this.closed) throw PubSubError.closed();
    await this.publisher.query('select pg_notify($1, $2)', [channel, encodeEvent(channel, event)]);
  }

  /**
   * Events of one channel, from the moment the returned promise resolves (LISTEN is in place),
   * until the iterator's `return()` is called or the pub/sub closes.
   */
  async subscribe<T>(channel: string, options: SubscribeOptions<T> = {}): Promise<AsyncIterableIterator<T>> {
    if (this.closed) throw PubSubError.closed();
    const bufferSize = options.bufferSize ?? 100;
    const buffer: T[] = [];
    let waiting: ((r: IteratorResult<T>) => void) | null = null;
    let done = false;

    const onEvent = (event: T) => {
      if (done) return;
      if (options.filter && !safeFilter(options.filter, event)) return;
      if (waiting) {
        const w = waiting;
        waiting = null;
        w({ value: event, done: false });
        return;
      }
      buffer.push(event);
      if (buffer.length > bufferSize) buffer.shift();
    };
    const finish = (): IteratorResult<T> => {
      if (!done) {
        done = true;
        buffer.length = 0;
        this.local.off(channel, onEvent);
        this.local.off('__close', finishWaiting);
      }
      return { value: undefined, done: true };
    };
    const finishWaiting = () => {
      const w = waiting;
      waiting = null;
      finish();
      w?.({ value: undefined, done: true });
    };

    this.local.on(channel, onEvent);
    this.local.on('__close', finishWaiting);
    try {
      await this.listen(channel);
    } catch (e) {
      finish();
      throw e;
    }

    const iterator: AsyncIterableIterator<T> = {
      next: () => {
        if (buffer.length > 0) return Promise.resolve({ value: buffer.shift()!, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          waiting = resolve;
        });
      },
      return: () => {
        finishWaiting();
        return Promise.resolve({ value: undefined, done: true });
      },
      throw: (e?: unknown) => {
        finishWaiting();
        return Promise.reject(e);
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Local subscriber count of a channel (for tests and diagnostics). */
  subscriberCount(channel: string): number {
    return this.local.listenerCount(channel);
  }

  /** The backend PID of the listening connection (tests use it to cut the connection). */
  async listenerPid(): Promise<number | null> {
    if (!this.listener) return null;
    const r = await this.listener.query<{ pid: number }>('select pg_backend_pid() as pid');
    return r.rows[0]?.pid ?? null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.local.emit('__close');
    await this.connecting?.catch(() => {});
    const client = this.listener;
    this.listener = null;
    await client?.end().catch(() => {});
    await this.publisher.end().catch(() => {});
  }
}

function safeFilter<T>(filter: (event: T) => boolean, event: T): boolean {
  try {
    return filter(event);
  } catch {
    return false;
  }
}
