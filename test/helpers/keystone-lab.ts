// The real Keystone lab (test/labs/keystone.sh): started once per machine — the script holds a
// flock, so parallel test files wait for one set-up and then reuse the running server.
import { lab, need } from './labs.ts';

export type KeystoneLab = {
  url: string;
  region: string;
  region2: string;
  admin: { username: string; password: string; domain: string; project: string };
  lab2: { username: string; password: string; domain: string; project: string };
};

export async function keystoneLab(): Promise<KeystoneLab> {
  const env = await lab('keystone');
  const need_ = (k: string) => need(env, 'keystone', k);
  return {
    url: need_('KEYSTONE_URL'),
    region: need_('KEYSTONE_REGION'),
    region2: need_('KEYSTONE_REGION2'),
    admin: { username: need_('KEYSTONE_ADMIN_USER'), password: need_('KEYSTONE_ADMIN_PASSWORD'), domain: need_('KEYSTONE_ADMIN_DOMAIN'), project: need_('KEYSTONE_ADMIN_PROJECT') },
    lab2: { username: need_('KEYSTONE_LAB2_USER'), password: need_('KEYSTONE_LAB2_PASSWORD'), domain: need_('KEYSTONE_LAB2_DOMAIN'), project: need_('KEYSTONE_LAB2_PROJECT') },
  };
}
