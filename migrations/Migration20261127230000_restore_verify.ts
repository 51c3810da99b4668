import { Migration } from '@mikro-orm/migrations';

export class Migration20261127230000_restore_verify extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "restore" add column "verify" boolean not null default false;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "restore" drop column "verify";`);
  }

}
