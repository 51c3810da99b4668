// S3 destination: s3://bucket/prefix?endpoint=http://…&region=…
// AWS SDK v3 on @smithy/node-http-handler with a keep-alive socket pool. The SDK's standard retry
// strategy retries each request (5xx, throttling, timeouts, resets); we classify what is left
// into BackendError codes and retry the one thing the SDK cannot see: a response body that
// breaks off while we read it.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Backend, ObjectInfo } from './backend.ts';
import { BackendError } from './backend.ts';
import { emptyOrInvalidRange } from './range.ts';
import { isTransientNetworkError, mapLimit, withRetries, type RetryPolicy } from './retry.ts';
import { keyPrefix, MiB, QuerySettings, rejectUrlCredentials } from './settings.ts';

export type S3Settings = {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region: string;
  pathStyle: boolean;
  /** Sockets in the pool and parts uploaded at once. */
  threads: number;
  /** Objects larger than this go up as multipart uploads of `partSize` parts. */
  multipartThreshold: number;
  partSize: number;
  connectTimeoutMs: number;
  /** A socket silent this long (no byte either way) is a timeout. */
  timeoutMs: number;
  retries: number;
  createBucket: boolean;
};

const S3_MIN_PART = 5 * MiB;

export function parseS3Url(url: URL, env: NodeJS.ProcessEnv): S3Settings {
  rejectUrlCredentials(url, 's3');
  const bucket = url.hostname;
  if (!bucket) throw new BackendError('INVALID', 's3 destination: missing bucket (s3://bucket/prefix)');
  const q = new QuerySettings(url, 's3');
  const endpoint = q.string('endpoint');
  if (endpoint && !/^https?:\/\/[^/]/.test(endpoint)) {
    throw new BackendError('INVALID', `s3 destination: endpoint ${endpoint} must be an http(s) URL`);
  }
  const partSize = q.size('part_size', 16 * MiB, S3_MIN_PART, 5 * 1024 * MiB);
  const settings: S3Settings = {
    bucket,
    prefix: keyPrefix(url.pathname),
    endpoint,
    region: q.string('region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    pathStyle: q.bool('path_style', true),
    threads: q.int('threads', 8, 1, 256),
    multipartThreshold: q.size('multipart_threshold', 64 * MiB, S3_MIN_PART, 5 * 1024 * MiB),
    partSize,
    connectTimeoutMs: q.seconds('connect_timeout', 10, 0.1, 600),
    timeoutMs: q.seconds('timeout', 60, 0.1, 3600),
    retries: q.int('retries', 5, 0, 50),
    createBucket: q.bool('create_bucket', true),
  };
  q.rejectUnknown();
  return settings;
}

export async function openS3Backend(url: URL, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  const settings = parseS3Url(url, env);
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new BackendError('INVALID', `${s3Location(settings)}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment`);
  }
  const backend = new S3Backend(settings, { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined });
  try {
    await backend.ensureBucket();
  } catch (error) {
    await backend.close();
    throw error;
  }
  return backend;
}

function s3Location(s: S3Settings): string {
  return `s3://${s.bucket}/${s.prefix}` + (s.endpoint ? ` at ${s.endpoint}` : '');
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

export class S3Backend implements Backend {
  readonly location: string;
  private readonly client: S3Client;
  private readonly bodyRetry: RetryPolicy;

  constructor(
    private readonly settings: S3Settings,
    credentials: Credentials,
  ) {
    this.location = s3Location(settings);
    const agentOptions = { keepAlive: true, maxSockets: settings.threads, maxFreeSockets: settings.threads };
    this.client = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint,
      forcePathStyle: settings.pathStyle,
      credentials,
      // Swift's s3api (and several other S3 servers) reject aws-chunked bodies with trailing
      // checksums (501); MD5 on puts (below) gives end-to-end integrity instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: settings.retries + 1,
      retryMode: 'standard',
      requestHandler: new NodeHttpHandler({
        httpAgent: new http.Agent(agentOptions),
        httpsAgent: new https.Agent(agentOptions),
        connectionTimeout: settings.connectTimeoutMs,
        socketTimeout: settings.timeoutMs,
      }),
    });
    this.bodyRetry = { retries: settings.retries, baseDelayMs: 200, maxDelayMs: 10_000 };
  }

  private objectKey(key: string): string {
    return this.settings.prefix + key;
  }

  async ensureBucket(): Promise<void> {
    const Bucket = this.settings.bucket;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket }));
      return;
    } catch (error) {
      if (httpStatus(error) !== 404 || !this.settings.createBucket) throw this.classify(error, 'open bucket');
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket }));
    } catch (error) {
      // Another process may have created it meanwhile.
      if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(errorName(error))) throw this.classify(error, 'create bucket');
    }
  }

  async get(key: string): Promise<Buffer> {
    return this.read(key, undefined);
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const empty = await emptyOrInvalidRange(this, key, offset, length);
    if (empty) return empty;
    return this.read(key, `bytes=${offset}-${offset + length - 1}`);
  }

  private async read(key: string, range: string | undefined): Promise<Buffer> {
    const op = range ? `get ${key} (${range})` : `get ${key}`;
    try {
      return await withRetries(this.bodyRetry, isBodyBreak, async () => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key), Range: range }));
        const body = Buffer.from(await out.Body!.transformToByteArray());
        if (out.ContentLength !== undefined && body.length !== out.ContentLength) {
          throw new BodyBreak(`body ended after ${body.length} of ${out.ContentLength} bytes`);
        }
        return body;
      });
    } catch (error) {
      throw this.classify(error, op, key);
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    if (data.length > this.settings.multipartThreshold) return this.putMultipart(key, data);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.objectKey(key),
          Body: data,
          ContentLength: data.length,
          ContentMD5: md5Base64(data),
          ContentType: 'application/octet-stream',
        }),
      );
    } catch (error) {
      throw this.classify(error, `put ${key}`);
    }
  }

  // The object appears only when CompleteMultipartUpload succeeds, so a failed upload is never
  // visible; we abort it so the server drops the parts already stored.
  private async putMultipart(key: string, data: Uint8Array): Promise<void> {
    const Bucket = this.settings.bucket;
    const Key = this.objectKey(key);
    let UploadId: string | undefined;
    let expectedEtag: string | undefined;
    try {
      UploadId = (await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: 'application/octet-stream' }))).UploadId;
      const size = this.settings.partSize;
      const starts = Array.from({ length: Math.ceil(data.length / size) }, (_, i) => i * size);
      const digests: Buffer[] = [];
      const parts = await mapLimit(starts, this.settings.threads, async (start, i) => {
        const body = data.subarray(start, start + size);
        digests[i] = createHash('md5').update(body).digest();
        const out = await this.client.send(
          new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body: body, ContentLength: body.length, ContentMD5: digests[i].toString('base64') }),
        );
        return { PartNumber: i + 1, ETag: out.ETag };
      });
      // S3's multipart ETag: MD5 of the parts' MD5s, dash, part count.
      expectedEtag = `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}`;
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (error) {
      // The completion may have landed with its answer lost: then the object is whole, keep it.
      if (expectedEtag && (await this.holds(Key, expectedEtag))) return;
      if (UploadId) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {
          // Best effort: the server may be the reason we failed. Its lifecycle rules (or the
          // next prune) remove abandoned parts; they are never visible as an object.
        });
      }
      throw this.classify(error, `put ${key} (multipart)`);
    }
  }

  private async holds(Key: string, etag: string): Promise<boolean> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key }));
      return out.ETag?.replace(/"/g, '') === etag;
    } catch {
      return false;
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }));
      return { key, size: out.ContentLength ?? 0 };
    } catch (error) {
      if (httpStatus(error) === 404) return null;
      throw this.classify(error, `stat ${key}`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: this.objectKey(prefix), ContinuationToken, MaxKeys: 1000 }),
        );
      } catch (error) {
        throw this.classify(error, `list ${prefix || '(all)'}`);
      }
      for (const o of page.Contents ?? []) {
        yield { key: o.Key!.slice(this.settings.prefix.length), size: o.Size ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }));
    } catch (error) {
      if (httpStatus(error) === 404) return;
      throw this.classify(error, `delete ${key}`);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** SDK error → BackendError. Messages name the destination and the operation, never a secret. */
  private classify(error: unknown, op: string, key?: string): BackendError {
    if (error instanceof BackendError) return error;
    const status = httpStatus(error);
    const name = errorName(error);
    const attempts = (error as { $metadata?: { attempts?: number } })?.$metadata?.attempts;
    if (name === 'NoSuchBucket') {
      return new BackendError('NOT_FOUND', `${this.location}: bucket ${this.settings.bucket} does not exist`, { cause: error });
    }
    if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
      return key !== undefined ? BackendError.notFound(this.location, key) : new BackendError('NOT_FOUND', `${this.location}: ${op}: not found`);
    }
    if (status === 401 || status === 403 || ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied'].includes(name)) {
      return new BackendError(
        'DENIED',
        `${this.location}: ${op} refused (${describe(name, status)}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's permissions`,
        { cause: error },
      );
    }
    if (status === 416) return new BackendError('INVALID', `${this.location}: ${op}: range outside the object`, { cause: error });
    if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
      return new BackendError('INVALID', `${this.location}: ${op} rejected (${describe(name, status)})`, { cause: error });
    }
    const why = status ? describe(name, status) : `${name || 'error'}: ${(error as Error)?.message ?? String(error)}`;
    const tries = attempts ?? this.settings.retries + 1;
    return new BackendError('UNAVAILABLE', `${this.location}: ${op} failed after ${tries} attempt(s): ${why}`, { cause: error });
  }
}

class BodyBreak extends Error {
  override name = 'BodyBreak';
}

/** A body that broke off mid-read; the SDK's retries are over by then, so we retry here. */
function isBodyBreak(error: unknown): boolean {
  if (error instanceof BodyBreak) return true;
  // Errors from the request itself carry $metadata: the SDK has already retried those.
  if ((error as { $metadata?: unknown })?.$metadata) return false;
  return isTransientNetworkError(error);
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** "403 AccessDenied", or "HTTP 403" when the server sent no error body (HEAD requests). */
function describe(name: string, status: number | undefined): string {
  const known = name && name !== 'Unknown' && name !== 'UnknownError';
  return status ? `HTTP ${status}${known ? ` ${name}` : ''}` : name || 'error';
}

function errorName(error: unknown): string {
  return (error as { name?: string })?.name ?? '';
}

function md5Base64(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}
