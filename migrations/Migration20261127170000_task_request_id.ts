import { Migration } from '@mikro-orm/migrations';

export class Migration20261127170000_task_request_id extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "task" add column "request_id" varchar(128) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "task" drop column "request_id";`);
  }

}
