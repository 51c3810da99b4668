import { Migration } from '@mikro-orm/migrations';

export class Migration20261127162000_audit_event extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "audit_event" ("id" uuid not null, "at" timestamptz not null, "actor_id" uuid null, "actor_name" varchar(200) not null, "actor_role" varchar(20) null, "action" varchar(100) not null, "project_id" uuid null, "target_ids" text[] not null, "result" varchar(64) not null, "message" varchar(500) null, "request_id" varchar(100) null, constraint "audit_event_pkey" primary key ("id"));`);
    this.addSql(`create index "audit_event_project_id_id_index" on "audit_event" ("project_id", "id");`);
    this.addSql(`create index "audit_event_actor_id_id_index" on "audit_event" ("actor_id", "id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "audit_event" cascade;`);
  }

}
