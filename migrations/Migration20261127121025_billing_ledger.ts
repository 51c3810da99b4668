import { Migration } from '@mikro-orm/migrations';

export class Migration20261127121025_billing_ledger extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "price_card" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(200) not null, "policy_id" uuid null, "destination_id" uuid null, "slot_from_hour" smallint null, "slot_to_hour" smallint null, "currency" varchar(3) not null default 'EUR', "stored_per_gb_month" numeric(20,6) not null default '0', "front_end_per_tb_month" numeric(20,6) not null default '0', constraint "price_card_pkey" primary key ("id"));`);
    this.addSql(`alter table "price_card" add constraint "price_card_name_unique" unique ("name");`);

    this.addSql(`create table "usage_checkpoint" ("week" date not null, "series_id" uuid not null, "stored" numeric(30,0) not null default 0, "stored_ms" numeric(40,0) not null default 0, "stored_added" numeric(30,0) not null default 0, "front_end_added" numeric(30,0) not null default 0, "transferred" numeric(30,0) not null default 0, "backups" numeric(20,0) not null default 0, constraint "usage_checkpoint_pkey" primary key ("week", "series_id"));`);

    this.addSql(`create table "usage_checkpoint_week" ("week" date not null, constraint "usage_checkpoint_week_pkey" primary key ("week"));`);

    this.addSql(`create table "usage_daily" ("day" date not null, "series_id" uuid not null, "stored" numeric(30,0) not null default 0, "stored_ms" numeric(40,0) not null default 0, "stored_added" numeric(30,0) not null default 0, "front_end_added" numeric(30,0) not null default 0, "transferred" numeric(30,0) not null default 0, "backups" numeric(20,0) not null default 0, constraint "usage_daily_pkey" primary key ("day", "series_id"));`);
    this.addSql(`create index "usage_daily_series_id_day_index" on "usage_daily" ("series_id", "day");`);

    this.addSql(`create table "usage_interval" ("backup_id" uuid not null, "series_id" uuid not null, "cloud_id" uuid not null, "project_id" uuid not null, "instance_id" uuid not null, "zone_id" uuid null, "policy_id" uuid null, "destination_id" uuid not null, "backup_type" text check ("backup_type" in ('FULL', 'INCREMENTAL')) not null, "stored_bytes" bigint not null, "front_end_bytes" bigint not null, "transferred_bytes" bigint not null, "started_hour" smallint not null, "completed_at" timestamptz not null, "deleted_at" timestamptz null, constraint "usage_interval_pkey" primary key ("backup_id"));`);
    this.addSql(`create index "usage_interval_completed_at_index" on "usage_interval" ("completed_at");`);
    this.addSql(`create index "usage_interval_deleted_at_index" on "usage_interval" ("deleted_at");`);
    this.addSql(`create index "usage_interval_instance_id_completed_at_index" on "usage_interval" ("instance_id", "completed_at");`);
    this.addSql(`create index "usage_interval_project_id_completed_at_index" on "usage_interval" ("project_id", "completed_at");`);
    this.addSql(`create index "usage_interval_full_index" on "usage_interval" ("instance_id", "completed_at") include ("deleted_at", "front_end_bytes", "backup_id", "cloud_id", "project_id", "zone_id", "policy_id", "destination_id", "started_hour") where "backup_type" = 'FULL';`);

    this.addSql(`create table "usage_series" ("id" uuid not null, "key" varchar(240) not null, "cloud_id" uuid not null, "project_id" uuid not null, "instance_id" uuid not null, "zone_id" uuid null, "policy_id" uuid null, "destination_id" uuid not null, constraint "usage_series_pkey" primary key ("id"));`);
    this.addSql(`alter table "usage_series" add constraint "usage_series_key_unique" unique ("key");`);
    this.addSql(`create index "usage_series_project_id_index" on "usage_series" ("project_id");`);

    this.addSql(`alter table "price_card" add constraint "price_card_policy_id_foreign" foreign key ("policy_id") references "policy" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "price_card" add constraint "price_card_destination_id_foreign" foreign key ("destination_id") references "backup_destination" ("id") on update cascade on delete cascade;`);

  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "price_card" cascade;`);

    this.addSql(`drop table if exists "usage_checkpoint" cascade;`);

    this.addSql(`drop table if exists "usage_checkpoint_week" cascade;`);

    this.addSql(`drop table if exists "usage_daily" cascade;`);

    this.addSql(`drop table if exists "usage_interval" cascade;`);

    this.addSql(`drop table if exists "usage_series" cascade;`);

  }

}
