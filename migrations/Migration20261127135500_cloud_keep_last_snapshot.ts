import { Migration } from '@mikro-orm/migrations';

export class Migration20261127135500_cloud_keep_last_snapshot extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "cloud" add column "keep_last_snapshot" boolean not null default false;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "cloud" drop column "keep_last_snapshot";`);
  }

}
