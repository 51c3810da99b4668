// Destination settings read from the URL's query string (never secrets: those come from the
// environment). One parser so S3 and Swift spell and validate settings the same way.
import { BackendError } from './backend.ts';

const MiB = 1024 * 1024;

export class QuerySettings {
  private readonly used = new Set<string>();
  constructor(
    private readonly url: URL,
    private readonly scheme: string,
  ) {}

  string(name: string): string | undefined {
    this.used.add(name);
    const value = this.url.searchParams.get(name);
    return value === null || value === '' ? undefined : value;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new BackendError('INVALID', `${this.scheme} destination: ${name}=${raw} must be an integer from ${min} to ${max}`);
    }
    return value;
  }

  /** Seconds, fractions allowed ("0.5"), returned in milliseconds. */
  seconds(name: string, fallbackSeconds: number, min: number, max: number): number {
    const raw = this.string(name);
    const value = raw === undefined ? fallbackSeconds : Number(raw);
    if (!(value >= min && value <= max)) {
      throw new BackendError('INVALID', `${this.scheme} destination: ${name}=${raw} must be a number of seconds from ${min} to ${max}`);
    }
    return Math.round(value * 1000);
  }

  /** Sizes in bytes, with an optional K/M/G suffix (binary units): "5M", "1048576". */
  size(name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const match = /^(\d+)([KMG]i?B?)?$/i.exec(raw);
    const unit = { K: 1024, M: MiB, G: 1024 * MiB }[(match?.[2]?.[0] ?? '').toUpperCase() as 'K'] ?? 1;
    const value = match ? Number(match[1]) * unit : NaN;
    if (!(value >= min && value <= max)) {
      throw new BackendError('INVALID', `${this.scheme} destination: ${name}=${raw} must be a size from ${min} to ${max} bytes`);
    }
    return value;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new BackendError('INVALID', `${this.scheme} destination: ${name}=${raw} must be true or false`);
  }

  /** A typo in a setting must not silently fall back to a default. */
  rejectUnknown(): void {
    for (const name of this.url.searchParams.keys()) {
      if (!this.used.has(name)) throw new BackendError('INVALID', `${this.scheme} destination: unknown setting ${name}`);
    }
  }
}

/** Credentials never travel in a destination URL (it ends up in logs and the catalog). */
export function rejectUrlCredentials(url: URL, scheme: string): void {
  if (url.username || url.password) {
    throw new BackendError('INVALID', `${scheme} destination: credentials in the URL are not accepted; set them in the environment`);
  }
}

/** "/a/b/" → "a/b/", "" → "": the object-name prefix under which a repository lives. */
export function keyPrefix(pathname: string): string {
  const trimmed = decodeURIComponent(pathname).replace(/^\/+|\/+$/g, '');
  return trimmed ? `${trimmed}/` : '';
}

export { MiB };
