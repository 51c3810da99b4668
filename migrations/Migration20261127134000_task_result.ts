import { Migration } from '@mikro-orm/migrations';

export class Migration20261127134000_task_result extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "task" add column "result" jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "task" drop column "result";`);
  }

}
