// Destination URL → backend, without the tracing wrapper of index.ts: for `strongbox repo`, which
// never traces, so it does not load the OpenTelemetry SDK, pino and graphql (~0.8 s of CPU and
// ~1 s at every start, measured on the bench machine) for spans that would all be no-ops.
import type { Backend } from './backend.ts';
import { BackendError } from './backend.ts';

export async function openUntraced(destination: string, env: NodeJS.ProcessEnv): Promise<Backend> {
  let url: URL;
  try {
    url = new URL(destination);
  } catch {
    throw new BackendError('INVALID', `not a destination URL: ${JSON.stringify(destination)}`);
  }
  switch (url.protocol) {
    case 'file:':
      return (await import('./fs.ts')).openFsBackend(url, env);
    case 's3:':
      return (await import('./s3.ts')).openS3Backend(url, env);
    case 'swift:':
      return (await import('./swift.ts')).openSwiftBackend(url, env);
    default:
      throw new BackendError('INVALID', `unsupported destination scheme ${url.protocol} (use file:, s3: or swift:)`);
  }
}
