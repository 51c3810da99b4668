import { Migration } from '@mikro-orm/migrations';

export class Migration20261127204000_task_traceparent extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "task" add column "traceparent" varchar(55) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "task" drop column "traceparent";`);
  }

}
