// The "what to do next" text `serve --demo` prints once it is up. Never prints a secret: the
// client secret stays in the 0600 credentials file and the curl line reads it from there.
import type { DemoCloud } from './demo-cloud.ts';
import { DEMO_ACCOUNT, DEMO_CLOUD, DEMO_DESTINATION, DEMO_POLICY, type DemoSetup } from './demo-setup.ts';

export function demoBanner(graphqlUrl: string, cloud: DemoCloud, setup: DemoSetup): string {
  const origin = new URL(graphqlUrl).origin;
  const file = JSON.stringify(setup.credentialsFile);
  const instances = Object.keys(cloud.seed.servers).filter((s) => s !== 'sb-backup-proxy');
  const again = (made: boolean) => (made ? 'created' : 'found');
  return `
Demo cloud (OpenStack simulator) at ${cloud.keystoneUrl}, region ${cloud.region}
  cloud "${DEMO_CLOUD}" ${again(setup.created.cloud)}; instances ${instances.join(', ')}; an inventory sync is queued
  default destination "${DEMO_DESTINATION}" ${again(setup.created.destination)}, policy "${DEMO_POLICY}" ${again(setup.created.policy)}
  ADMIN service account "${DEMO_ACCOUNT}": credentials in ${setup.credentialsFile} (mode 0600)

What to do next
  1. A token (valid 15 minutes; ask again for a new one):
     TOKEN=$(curl -s ${origin}/oauth/token -H 'content-type: application/json' -d @${file} \\
       | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).access_token')
  2. GraphiQL: open ${graphqlUrl} and add the header {"Authorization": "Bearer <the token>"}; or curl:
     curl -s ${graphqlUrl} -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
       -d '{"query":"{ instances(first: 10) { edges { node { id name present volumes { name sizeBytes } } } } }"}'
  3. Back one up and watch its progress:
     mutation { startBackup(input: { instanceId: "<an instance id>" }) { task { id state } userErrors { code message } } }
     { tasks(first: 5) { edges { node { type state phase progress error } } } }

`;
}
