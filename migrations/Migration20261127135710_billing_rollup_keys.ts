import { Migration } from '@mikro-orm/migrations';

export class Migration20261127135710_billing_rollup_keys extends Migration {

  override async up(): Promise<void> {
    // Existing rollup rows take their series' keys before the columns become NOT NULL.
    this.addSql(`alter table "usage_checkpoint" add column "cloud_id" uuid null, add column "project_id" uuid null, add column "instance_id" uuid null, add column "zone_id" uuid null, add column "policy_id" uuid null, add column "destination_id" uuid null;`);
    this.addSql(`update "usage_checkpoint" r set cloud_id = s.cloud_id, project_id = s.project_id, instance_id = s.instance_id, zone_id = s.zone_id, policy_id = s.policy_id, destination_id = s.destination_id from "usage_series" s where s.id = r.series_id;`);
    this.addSql(`alter table "usage_checkpoint" alter column "cloud_id" set not null, alter column "project_id" set not null, alter column "instance_id" set not null, alter column "destination_id" set not null;`);
    this.addSql(`create index "usage_checkpoint_project_id_week_index" on "usage_checkpoint" ("project_id", "week");`);

    // Existing rollup rows take their series' keys before the columns become NOT NULL.
    this.addSql(`alter table "usage_daily" add column "cloud_id" uuid null, add column "project_id" uuid null, add column "instance_id" uuid null, add column "zone_id" uuid null, add column "policy_id" uuid null, add column "destination_id" uuid null;`);
    this.addSql(`update "usage_daily" r set cloud_id = s.cloud_id, project_id = s.project_id, instance_id = s.instance_id, zone_id = s.zone_id, policy_id = s.policy_id, destination_id = s.destination_id from "usage_series" s where s.id = r.series_id;`);
    this.addSql(`alter table "usage_daily" alter column "cloud_id" set not null, alter column "project_id" set not null, alter column "instance_id" set not null, alter column "destination_id" set not null;`);
    this.addSql(`create index "usage_daily_project_id_day_index" on "usage_daily" ("project_id", "day");`);

    this.addSql(`create index "usage_interval_policy_index" on "usage_interval" ("policy_id", "completed_at") include ("stored_bytes", "project_id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "usage_checkpoint_project_id_week_index";`);
    this.addSql(`alter table "usage_checkpoint" drop column "cloud_id", drop column "project_id", drop column "instance_id", drop column "zone_id", drop column "policy_id", drop column "destination_id";`);

    this.addSql(`drop index "usage_daily_project_id_day_index";`);
    this.addSql(`alter table "usage_daily" drop column "cloud_id", drop column "project_id", drop column "instance_id", drop column "zone_id", drop column "policy_id", drop column "destination_id";`);

    this.addSql(`drop index "usage_interval_policy_index";`);
  }

}
