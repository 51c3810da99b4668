import { Migration } from '@mikro-orm/migrations';

export class Migration20261127220000_restore_note extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "restore" add column "note" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "restore" drop column "note";`);
  }

}
