// Destination URL → backend. Credentials come from the environment, never from the URL.
//   file:///path
//   s3://bucket/prefix?endpoint=http://…&region=…
//   swift://container/prefix?auth=http://…/v3&region=…
import type { Backend } from './backend.ts';
import { BackendError } from './backend.ts';

export type { Backend, ObjectInfo } from './backend.ts';
export { BackendError } from './backend.ts';

export async function openBackend(destination: string, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
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
