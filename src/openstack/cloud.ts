// A cloud reached through several auth domains. Each credential set authenticates in its own
// domain; with domain-scoped authorization on, it is used only for that domain's projects
// (a domain-scoped token for identity calls, project-scoped tokens for the rest). Sessions and
// their tokens are cached per scope.
import type { EndpointInterface } from './catalog.ts';
import { CinderClient } from './cinder.ts';
import { GlanceClient } from './glance.ts';
import { HttpClient, type HttpOptions } from './http.ts';
import { KeystoneClient, TokenSource, type AuthScope, type PasswordCredentials } from './keystone.ts';
import { NeutronClient } from './neutron.ts';
import { NovaClient } from './nova.ts';
import { Session } from './session.ts';

export type AuthDomainCredentials = {
  /** The OpenStack domain name. */
  name: string;
  domainId?: string;
  username: string;
  password: string;
  /** Project (name, in this domain) for project-scoped tokens. */
  defaultProject: string;
};

export type CloudConnectionOptions = {
  keystoneUrl: string;
  region: string;
  iface: EndpointInterface;
  domainScoped: boolean;
  authDomains: AuthDomainCredentials[];
  http?: HttpOptions;
  /** Re-authenticate this long before a token expires. */
  refreshMarginMs?: number;
};

export type ServiceClients = { nova: NovaClient; cinder: CinderClient; glance: GlanceClient; neutron: NeutronClient };

export function clientsFor(session: Session): ServiceClients {
  return { nova: new NovaClient(session), cinder: new CinderClient(session), glance: new GlanceClient(session), neutron: new NeutronClient(session) };
}

export class OpenStackCloud {
  readonly http: HttpClient;
  readonly keystone: KeystoneClient;
  readonly #sessions = new Map<string, Session>();

  constructor(readonly opts: CloudConnectionOptions) {
    if (opts.authDomains.length === 0) throw new Error('a cloud needs at least one auth domain');
    this.http = new HttpClient(opts.http);
    this.keystone = new KeystoneClient(opts.keystoneUrl, this.http);
  }

  get authDomains(): AuthDomainCredentials[] {
    return this.opts.authDomains;
  }

  authDomain(name?: string): AuthDomainCredentials {
    const d = name === undefined ? this.opts.authDomains[0] : this.opts.authDomains.find((a) => a.name === name);
    if (!d) throw new Error(`no credentials for auth domain ${JSON.stringify(name)}`);
    return d;
  }

  /** Project-scoped to the auth domain's default project (the first auth domain by default). */
  defaultSession(domain?: string): Session {
    const d = this.authDomain(domain);
    return this.#session(d, { project: { name: d.defaultProject, domain: this.#domainRef(d) } });
  }

  /** For identity calls within the domain: domain-scoped when domain-scoped authorization is on. */
  identitySession(domain?: string): Session {
    const d = this.authDomain(domain);
    return this.opts.domainScoped ? this.#session(d, { domain: this.#domainRef(d) }) : this.defaultSession(d.name);
  }

  /** Project-scoped to a project (by ID) with the credentials of the domain the project is in. */
  projectSession(domain: string, projectId: string): Session {
    return this.#session(this.authDomain(domain), { project: { id: projectId } });
  }

  clients(session: Session): ServiceClients {
    return clientsFor(session);
  }

  #domainRef(d: AuthDomainCredentials) {
    return d.domainId ? { id: d.domainId } : { name: d.name };
  }

  #session(d: AuthDomainCredentials, scope: AuthScope): Session {
    const key = `${d.name}\u0000${JSON.stringify(scope)}`;
    let s = this.#sessions.get(key);
    if (!s) {
      const credentials: PasswordCredentials = { username: d.username, password: d.password, userDomain: this.#domainRef(d) };
      s = new Session(new TokenSource(this.keystone, credentials, scope, { refreshMarginMs: this.opts.refreshMarginMs }), this.http, this.opts.iface, this.opts.region);
      this.#sessions.set(key, s);
    }
    return s;
  }
}
