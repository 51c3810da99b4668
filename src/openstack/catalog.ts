// The service catalog of a Keystone v3 token, and endpoint choice by service type, interface
// and region (as the operator configured them for the cloud).
import { OpenStackCatalogError } from './errors.ts';

export type EndpointInterface = 'public' | 'internal' | 'admin';

export type CatalogEndpoint = {
  id: string;
  interface: EndpointInterface;
  region: string | null;
  region_id: string | null;
  url: string;
};

export type CatalogService = {
  id: string;
  name: string;
  type: string;
  endpoints: CatalogEndpoint[];
};

/** Service types we call, with the older/newer aliases a catalog may list them under. */
export const serviceTypes = {
  identity: ['identity'],
  compute: ['compute'],
  volumev3: ['volumev3', 'block-storage'],
  image: ['image'],
  network: ['network'],
} as const;

export function selectEndpoint(
  catalog: CatalogService[],
  types: readonly string[],
  iface: EndpointInterface,
  region: string,
): string {
  for (const type of types) {
    for (const service of catalog.filter((s) => s.type === type)) {
      const ep = service.endpoints.find((e) => e.interface === iface && (e.region_id === region || e.region === region));
      if (ep) return ep.url.replace(/\/+$/, '');
    }
  }
  throw new OpenStackCatalogError(types[0] ?? '?', iface, region);
}
