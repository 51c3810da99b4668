// Placeholder so the repo-core branch type-checks: the real S3 backend is built on its own branch
// and replaces this file when merged.
import type { Backend } from './backend.ts';
import { BackendError } from './backend.ts';

export async function openS3Backend(url: URL, _env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  throw new BackendError('INVALID', `${url.protocol} destinations are not available in this build`);
}
