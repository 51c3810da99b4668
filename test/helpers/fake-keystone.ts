// A tiny Keystone v3 stand-in for the Swift client's v3 path until a real Keystone lab exists.
// It answers POST /v3/auth/tokens in the real token shape (the recorded response in
// ../shared/openstack-samples/token_issue_with_catalog.json, with an object-store service added)
// and hands out the real lab's storage URL and a real tempauth token, so data still goes to
// the real Swift. It checks the request body the way Keystone would and counts issued tokens.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

type Json = Record<string, any>;
const sample = JSON.parse(readFileSync(new URL('../fixtures/keystone-token-with-catalog.json', import.meta.url), 'utf8')) as Json;

export type KeystoneUser = { username: string; password: string; userDomain: string; project: string; projectDomain: string };

export type FakeKeystoneOptions = {
  user: KeystoneUser;
  /** Object-store endpoints per interface in region "RegionOne" (plus a decoy region). */
  storageUrl: () => string;
  /** The token given to the client for Swift (a real tempauth token of the lab). */
  swiftToken: () => Promise<string>;
  /** Token lifetime; short values exercise renewal before expiry. */
  ttlMs?: number;
};

export class FakeKeystone {
  issued = 0;
  /** When set, the next token handed out is this (e.g. a revoked one, to provoke a 401). */
  nextToken: string | undefined;
  private readonly server: http.Server;

  private constructor(private readonly options: FakeKeystoneOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  static async start(options: FakeKeystoneOptions): Promise<FakeKeystone> {
    const k = new FakeKeystone(options);
    await new Promise<void>((resolve) => k.server.listen(0, '127.0.0.1', resolve));
    return k;
  }

  get authUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v3`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || req.url !== '/v3/auth/tokens') {
      res.writeHead(404).end();
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
    const u = this.options.user;
    const identity = body.auth?.identity;
    const user = identity?.password?.user;
    const project = body.auth?.scope?.project;
    const ok =
      identity?.methods?.[0] === 'password' &&
      user?.name === u.username &&
      user?.password === u.password &&
      user?.domain?.name === u.userDomain &&
      project?.name === u.project &&
      project?.domain?.name === u.projectDomain;
    if (!ok) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' } }));
      return;
    }
    const token = this.nextToken ?? (await this.options.swiftToken());
    this.nextToken = undefined;
    this.issued++;
    const now = Date.now();
    const answer = structuredClone(sample.response.body) as Json;
    answer.token.issued_at = new Date(now).toISOString();
    answer.token.expires_at = new Date(now + (this.options.ttlMs ?? 3600_000)).toISOString();
    const endpoint = (iface: string, region: string, url: string) => ({ id: `${iface}-${region}`, interface: iface, region, region_id: region, url });
    const storage = this.options.storageUrl();
    answer.token.catalog.push(
      {
        type: 'object-store',
        name: 'swift',
        id: 'swift-service',
        endpoints: [
          endpoint('public', 'RegionOne', storage),
          endpoint('internal', 'RegionOne', storage),
          endpoint('admin', 'RegionOne', 'http://127.0.0.1:1/v1/wrong-interface'),
          endpoint('public', 'RegionTwo', 'http://127.0.0.1:1/v1/wrong-region'),
        ],
      },
      {
        type: 'object-store',
        name: 'swift-archive',
        id: 'archive-service',
        endpoints: [endpoint('public', 'RegionOne', 'http://127.0.0.1:1/v1/wrong-service')],
      },
    );
    res.writeHead(201, { 'Content-Type': 'application/json', 'X-Subject-Token': token });
    res.end(JSON.stringify(answer));
  }
}
