import { Migration } from '@mikro-orm/migrations';

export class Migration20261127134500_backup_disk_checkpoint extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "backup_disk" add column "checkpoint" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "backup_disk" drop column "checkpoint";`);
  }

}
