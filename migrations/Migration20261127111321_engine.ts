import { Migration } from '@mikro-orm/migrations';

export class Migration20261127111321_engine extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "data_mover" add column "worker_ids" jsonb not null default '[]';`);

    this.addSql(`alter table "task" add column "schedule_key" varchar(255) null;`);
    this.addSql(`alter table "task" add constraint "task_schedule_key_unique" unique ("schedule_key");`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "data_mover" drop column "worker_ids";`);

    this.addSql(`alter table "task" drop constraint "task_schedule_key_unique";`);
    this.addSql(`alter table "task" drop column "schedule_key";`);
  }

}
