import { Migration } from '@mikro-orm/migrations';

export class Migration20261127110139_initial extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "audit_entry" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "account_id" uuid null, "account_name" varchar(200) null, "action" varchar(100) not null, "object_type" varchar(64) null, "object_id" varchar(64) null, "project_id" uuid null, "details" jsonb not null, constraint "audit_entry_pkey" primary key ("id"));`);
    this.addSql(`create index "audit_entry_created_at_index" on "audit_entry" ("created_at");`);
    this.addSql(`create index "audit_entry_project_id_created_at_index" on "audit_entry" ("project_id", "created_at");`);

    this.addSql(`create table "backup_destination" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(200) not null, "kind" text check ("kind" in ('FILE_SYSTEM', 'S3', 'SWIFT')) not null, "url" varchar(2048) not null, "settings" jsonb not null, "credentials" text null, "encryption" boolean not null default true, "compression" text check ("compression" in ('ZSTD', 'NONE')) not null default 'ZSTD', "chunk_size_bytes" int not null default 1048576, "is_default" boolean not null default false, "visibility" text check ("visibility" in ('ALL_PROJECTS', 'CHOSEN_PROJECTS')) not null default 'ALL_PROJECTS', constraint "backup_destination_pkey" primary key ("id"));`);
    this.addSql(`alter table "backup_destination" add constraint "backup_destination_name_unique" unique ("name");`);

    this.addSql(`create table "idempotency_record" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "account_id" uuid not null, "key" varchar(255) not null, "request_hash" varchar(64) not null, "response" jsonb not null, constraint "idempotency_record_pkey" primary key ("id"));`);
    this.addSql(`alter table "idempotency_record" add constraint "idempotency_record_account_id_key_unique" unique ("account_id", "key");`);

    this.addSql(`create table "node_configuration" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(200) not null, "concurrent_tasks" int not null default 2, "staging_path" varchar(4096) not null default '/var/lib/strongbox/staging', "attachment_limit" int not null default 25, "cloud_id" uuid null, "proxy_server_id" varchar(255) null, constraint "node_configuration_pkey" primary key ("id"));`);
    this.addSql(`alter table "node_configuration" add constraint "node_configuration_name_unique" unique ("name");`);

    this.addSql(`create table "data_mover" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(255) not null, "host" varchar(255) not null, "pid" int null, "version" varchar(64) null, "node_configuration_id" uuid null, "last_heartbeat_at" timestamptz not null, "running_tasks" int not null default 0, "stopped_at" timestamptz null, constraint "data_mover_pkey" primary key ("id"));`);
    this.addSql(`alter table "data_mover" add constraint "data_mover_name_unique" unique ("name");`);

    this.addSql(`create table "cloud" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(200) not null, "keystone_url" varchar(2048) not null, "region" varchar(255) not null, "endpoint_interface" text check ("endpoint_interface" in ('PUBLIC', 'INTERNAL', 'ADMIN')) not null default 'INTERNAL', "mode" text check ("mode" in ('DISK_ATTACHMENT', 'DISK_ATTACHMENT_CBT', 'SSH_TRANSFER')) not null default 'DISK_ATTACHMENT', "download_image" boolean not null default false, "domain_scoped" boolean not null default false, "node_configuration_id" uuid null, "last_sync_at" timestamptz null, constraint "cloud_pkey" primary key ("id"));`);
    this.addSql(`alter table "cloud" add constraint "cloud_name_unique" unique ("name");`);

    this.addSql(`create table "network" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "external_id" varchar(255) not null, "name" varchar(255) not null, "project_external_id" varchar(255) null, "shared" boolean not null default false, constraint "network_pkey" primary key ("id"));`);
    this.addSql(`alter table "network" add constraint "network_cloud_id_external_id_unique" unique ("cloud_id", "external_id");`);

    this.addSql(`create table "image" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "external_id" varchar(255) not null, "name" varchar(255) not null, "size_bytes" bigint null, "disk_format" varchar(32) null, "status" varchar(32) null, "present" boolean not null default true, constraint "image_pkey" primary key ("id"));`);
    this.addSql(`alter table "image" add constraint "image_cloud_id_external_id_unique" unique ("cloud_id", "external_id");`);

    this.addSql(`create table "flavor" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "external_id" varchar(255) not null, "name" varchar(255) not null, "vcpus" int not null default 0, "ram_mib" int not null default 0, "disk_gib" int not null default 0, "ephemeral_gib" int not null default 0, constraint "flavor_pkey" primary key ("id"));`);
    this.addSql(`alter table "flavor" add constraint "flavor_cloud_id_external_id_unique" unique ("cloud_id", "external_id");`);

    this.addSql(`create table "cloud_auth_domain" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "name" varchar(255) not null, "domain_id" varchar(255) null, "username" varchar(255) not null, "password" text not null, "default_project" varchar(255) not null, constraint "cloud_auth_domain_pkey" primary key ("id"));`);
    this.addSql(`alter table "cloud_auth_domain" add constraint "cloud_auth_domain_cloud_id_name_unique" unique ("cloud_id", "name");`);

    this.addSql(`create table "backup_destination_node_configuration" ("backup_destination_id" uuid not null, "node_configuration_id" uuid not null, constraint "backup_destination_node_configuration_pkey" primary key ("backup_destination_id", "node_configuration_id"));`);

    this.addSql(`create table "policy" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(200) not null, "description" varchar(2000) null, "enabled" boolean not null default true, "destination_id" uuid null, "schedules" jsonb not null, "full_every" int not null default 7, "priority" int not null default 50, "retries" int not null default 2, "retention" jsonb not null, "rules" jsonb not null, "visibility" text check ("visibility" in ('ALL_PROJECTS', 'CHOSEN_PROJECTS')) not null default 'ALL_PROJECTS', constraint "policy_pkey" primary key ("id"));`);
    this.addSql(`alter table "policy" add constraint "policy_name_unique" unique ("name");`);

    this.addSql(`create table "project" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "external_id" varchar(255) not null, "name" varchar(255) not null, "domain_id" varchar(255) null, "enabled" boolean not null default true, "present" boolean not null default true, constraint "project_pkey" primary key ("id"));`);
    this.addSql(`alter table "project" add constraint "project_cloud_id_external_id_unique" unique ("cloud_id", "external_id");`);

    this.addSql(`create table "policy_project" ("policy_id" uuid not null, "project_id" uuid not null, constraint "policy_project_pkey" primary key ("policy_id", "project_id"));`);

    this.addSql(`create table "backup_destination_project" ("backup_destination_id" uuid not null, "project_id" uuid not null, constraint "backup_destination_project_pkey" primary key ("backup_destination_id", "project_id"));`);

    this.addSql(`create table "quota" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(200) not null, "action" text check ("action" in ('BACKUP', 'RESTORE')) not null, "scope" text check ("scope" in ('INSTANCE', 'PROJECT')) not null, "measure" text check ("measure" in ('COUNT', 'BYTES')) not null, "window_seconds" int not null, "soft_limit" bigint null, "hard_limit" bigint null, constraint "quota_pkey" primary key ("id"));`);
    this.addSql(`alter table "quota" add constraint "quota_name_unique" unique ("name");`);

    this.addSql(`create table "quota_assignment" ("quota_id" uuid not null, "project_id" uuid not null, constraint "quota_assignment_pkey" primary key ("quota_id", "project_id"));`);

    this.addSql(`create table "service_account" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(200) not null, "role" text check ("role" in ('ADMIN', 'OPERATOR', 'BILLING', 'TENANT')) not null, "client_id" varchar(64) not null, "secret_hash" varchar(512) not null, "enabled" boolean not null default true, "last_used_at" timestamptz null, constraint "service_account_pkey" primary key ("id"));`);
    this.addSql(`alter table "service_account" add constraint "service_account_name_unique" unique ("name");`);
    this.addSql(`alter table "service_account" add constraint "service_account_client_id_unique" unique ("client_id");`);

    this.addSql(`create table "service_account_project" ("service_account_id" uuid not null, "project_id" uuid not null, constraint "service_account_project_pkey" primary key ("service_account_id", "project_id"));`);

    this.addSql(`create table "signing_key" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "kid" varchar(64) not null, "alg" varchar(16) not null, "private_jwk" text not null, "public_jwk" jsonb not null, "retired_at" timestamptz null, constraint "signing_key_pkey" primary key ("id"));`);
    this.addSql(`alter table "signing_key" add constraint "signing_key_kid_unique" unique ("kid");`);

    this.addSql(`create table "storage_provider" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "name" varchar(200) not null, "kind" text check ("kind" in ('CEPH_RBD')) not null default 'CEPH_RBD', "ceph_user" varchar(255) not null, "keyring" text not null, "ceph_conf" text not null, "pool_strategy" text check ("pool_strategy" in ('INCLUDE', 'EXCLUDE')) not null default 'EXCLUDE', "pools" jsonb not null, "node_configuration_id" uuid null, constraint "storage_provider_pkey" primary key ("id"));`);
    this.addSql(`alter table "storage_provider" add constraint "storage_provider_name_unique" unique ("name");`);

    this.addSql(`create table "availability_zone" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "name" varchar(255) not null, "storage_provider_id" uuid null, "node_configuration_id" uuid null, "visibility" text check ("visibility" in ('ALL_PROJECTS', 'CHOSEN_PROJECTS')) not null default 'ALL_PROJECTS', constraint "availability_zone_pkey" primary key ("id"));`);
    this.addSql(`alter table "availability_zone" add constraint "availability_zone_cloud_id_name_unique" unique ("cloud_id", "name");`);

    this.addSql(`create table "hypervisor" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "zone_id" uuid null, "external_id" varchar(255) not null, "hostname" varchar(255) not null, "host_ip" varchar(255) null, "hypervisor_type" varchar(64) null, "ssh_user" varchar(255) null, "ssh_password" text null, "ssh_key_path" varchar(4096) null, "ssh_port" int not null default 22, "command_prefix" varchar(1024) null, "pinned_host_key" text null, "node_configuration_id" uuid null, "present" boolean not null default true, constraint "hypervisor_pkey" primary key ("id"));`);
    this.addSql(`alter table "hypervisor" add constraint "hypervisor_cloud_id_external_id_unique" unique ("cloud_id", "external_id");`);

    this.addSql(`create table "instance" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "project_id" uuid not null, "zone_id" uuid null, "hypervisor_id" uuid null, "flavor_id" uuid null, "image_id" uuid null, "external_id" varchar(255) not null, "name" varchar(255) not null, "status" varchar(64) null, "present" boolean not null default true, "policy_id" uuid null, "metadata" jsonb not null, "last_seen_at" timestamptz null, constraint "instance_pkey" primary key ("id"));`);
    this.addSql(`create index "instance_project_id_index" on "instance" ("project_id");`);
    this.addSql(`alter table "instance" add constraint "instance_cloud_id_external_id_unique" unique ("cloud_id", "external_id");`);

    this.addSql(`create table "availability_zone_project" ("availability_zone_id" uuid not null, "project_id" uuid not null, constraint "availability_zone_project_pkey" primary key ("availability_zone_id", "project_id"));`);

    this.addSql(`create table "task" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "type" text check ("type" in ('BACKUP', 'RESTORE', 'INVENTORY_SYNC', 'PRUNE', 'VERIFY')) not null, "state" text check ("state" in ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')) not null default 'QUEUED', "phase" varchar(64) null, "bytes_done" bigint not null default 0, "bytes_total" bigint not null default 0, "rate" double precision null, "attempt" int not null default 0, "max_attempts" int not null default 3, "priority" int not null default 50, "cloud_id" uuid null, "project_id" uuid null, "instance_id" uuid null, "policy_id" uuid null, "destination_id" uuid null, "data_mover_id" uuid null, "backup_id" uuid null, "params" jsonb not null, "created_by_id" uuid null, "phase_seconds" jsonb not null, "cancel_requested" boolean not null default false, "not_before" timestamptz null, "deadline" timestamptz null, "started_at" timestamptz null, "finished_at" timestamptz null, "error" text null, constraint "task_pkey" primary key ("id"));`);
    this.addSql(`create index "task_project_id_created_at_index" on "task" ("project_id", "created_at");`);
    this.addSql(`create index "task_instance_id_index" on "task" ("instance_id");`);
    this.addSql(`create index "task_state_index" on "task" ("state");`);

    this.addSql(`create table "backup" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "project_id" uuid not null, "instance_id" uuid not null, "zone_id" uuid null, "policy_id" uuid null, "destination_id" uuid not null, "task_id" uuid null, "parent_id" uuid null, "type" text check ("type" in ('FULL', 'INCREMENTAL')) not null default 'FULL', "state" text check ("state" in ('RUNNING', 'AVAILABLE', 'FAILED', 'DELETED')) not null default 'RUNNING', "repository_backup_id" varchar(255) null, "completed_at" timestamptz null, "deleted_at" timestamptz null, "duration_seconds" double precision null, "front_end_bytes" bigint not null default 0, "read_bytes" bigint not null default 0, "transferred_bytes" bigint not null default 0, "stored_bytes" bigint not null default 0, "metadata" jsonb not null, "note" text null, constraint "backup_pkey" primary key ("id"));`);
    this.addSql(`create index "backup_instance_id_created_at_index" on "backup" ("instance_id", "created_at");`);
    this.addSql(`create index "backup_project_id_created_at_index" on "backup" ("project_id", "created_at");`);

    this.addSql(`create table "restore" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "backup_id" uuid not null, "project_id" uuid not null, "task_id" uuid null, "zone_id" uuid null, "name" varchar(255) not null, "mappings" jsonb not null, "state" text check ("state" in ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')) not null default 'QUEUED', "result_external_id" varchar(255) null, constraint "restore_pkey" primary key ("id"));`);

    this.addSql(`create table "volume_type" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "external_id" varchar(255) not null, "name" varchar(255) not null, "ceph_pool" varchar(255) null, constraint "volume_type_pkey" primary key ("id"));`);
    this.addSql(`alter table "volume_type" add constraint "volume_type_cloud_id_external_id_unique" unique ("cloud_id", "external_id");`);

    this.addSql(`create table "volume" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "cloud_id" uuid not null, "project_id" uuid not null, "instance_id" uuid null, "external_id" varchar(255) not null, "name" varchar(255) not null, "kind" text check ("kind" in ('CINDER', 'NOVA', 'EPHEMERAL')) not null default 'CINDER', "size_bytes" bigint not null default 0, "volume_type_id" uuid null, "boot_index" int null, "device" varchar(255) null, "present" boolean not null default true, constraint "volume_pkey" primary key ("id"));`);
    this.addSql(`create index "volume_instance_id_index" on "volume" ("instance_id");`);
    this.addSql(`create index "volume_project_id_index" on "volume" ("project_id");`);
    this.addSql(`alter table "volume" add constraint "volume_cloud_id_external_id_unique" unique ("cloud_id", "external_id");`);

    this.addSql(`create table "backup_disk" ("id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "backup_id" uuid not null, "project_id" uuid not null, "volume_id" uuid null, "position" int not null, "name" varchar(255) not null, "kind" varchar(32) not null, "volume_external_id" varchar(255) null, "device" varchar(255) null, "boot_index" int null, "size_bytes" bigint not null default 0, "read_bytes" bigint not null default 0, "stored_bytes" bigint not null default 0, constraint "backup_disk_pkey" primary key ("id"));`);
    this.addSql(`alter table "backup_disk" add constraint "backup_disk_backup_id_position_unique" unique ("backup_id", "position");`);

    this.addSql(`alter table "node_configuration" add constraint "node_configuration_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "data_mover" add constraint "data_mover_node_configuration_id_foreign" foreign key ("node_configuration_id") references "node_configuration" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "cloud" add constraint "cloud_node_configuration_id_foreign" foreign key ("node_configuration_id") references "node_configuration" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "network" add constraint "network_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "image" add constraint "image_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "flavor" add constraint "flavor_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "cloud_auth_domain" add constraint "cloud_auth_domain_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "backup_destination_node_configuration" add constraint "backup_destination_node_configuration_backup_des_0fad8_foreign" foreign key ("backup_destination_id") references "backup_destination" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "backup_destination_node_configuration" add constraint "backup_destination_node_configuration_node_confi_b190e_foreign" foreign key ("node_configuration_id") references "node_configuration" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "policy" add constraint "policy_destination_id_foreign" foreign key ("destination_id") references "backup_destination" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "project" add constraint "project_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "policy_project" add constraint "policy_project_policy_id_foreign" foreign key ("policy_id") references "policy" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "policy_project" add constraint "policy_project_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "backup_destination_project" add constraint "backup_destination_project_backup_destination_id_foreign" foreign key ("backup_destination_id") references "backup_destination" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "backup_destination_project" add constraint "backup_destination_project_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "quota_assignment" add constraint "quota_assignment_quota_id_foreign" foreign key ("quota_id") references "quota" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "quota_assignment" add constraint "quota_assignment_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "service_account_project" add constraint "service_account_project_service_account_id_foreign" foreign key ("service_account_id") references "service_account" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "service_account_project" add constraint "service_account_project_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "storage_provider" add constraint "storage_provider_node_configuration_id_foreign" foreign key ("node_configuration_id") references "node_configuration" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "availability_zone" add constraint "availability_zone_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "availability_zone" add constraint "availability_zone_storage_provider_id_foreign" foreign key ("storage_provider_id") references "storage_provider" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "availability_zone" add constraint "availability_zone_node_configuration_id_foreign" foreign key ("node_configuration_id") references "node_configuration" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "hypervisor" add constraint "hypervisor_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "hypervisor" add constraint "hypervisor_zone_id_foreign" foreign key ("zone_id") references "availability_zone" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "hypervisor" add constraint "hypervisor_node_configuration_id_foreign" foreign key ("node_configuration_id") references "node_configuration" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "instance" add constraint "instance_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "instance" add constraint "instance_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "instance" add constraint "instance_zone_id_foreign" foreign key ("zone_id") references "availability_zone" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "instance" add constraint "instance_hypervisor_id_foreign" foreign key ("hypervisor_id") references "hypervisor" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "instance" add constraint "instance_flavor_id_foreign" foreign key ("flavor_id") references "flavor" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "instance" add constraint "instance_image_id_foreign" foreign key ("image_id") references "image" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "instance" add constraint "instance_policy_id_foreign" foreign key ("policy_id") references "policy" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "availability_zone_project" add constraint "availability_zone_project_availability_zone_id_foreign" foreign key ("availability_zone_id") references "availability_zone" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "availability_zone_project" add constraint "availability_zone_project_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "task" add constraint "task_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "task" add constraint "task_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "task" add constraint "task_instance_id_foreign" foreign key ("instance_id") references "instance" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "task" add constraint "task_policy_id_foreign" foreign key ("policy_id") references "policy" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "task" add constraint "task_destination_id_foreign" foreign key ("destination_id") references "backup_destination" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "task" add constraint "task_data_mover_id_foreign" foreign key ("data_mover_id") references "data_mover" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "task" add constraint "task_backup_id_foreign" foreign key ("backup_id") references "backup" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "task" add constraint "task_created_by_id_foreign" foreign key ("created_by_id") references "service_account" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "backup" add constraint "backup_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "backup" add constraint "backup_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "backup" add constraint "backup_instance_id_foreign" foreign key ("instance_id") references "instance" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "backup" add constraint "backup_zone_id_foreign" foreign key ("zone_id") references "availability_zone" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "backup" add constraint "backup_policy_id_foreign" foreign key ("policy_id") references "policy" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "backup" add constraint "backup_destination_id_foreign" foreign key ("destination_id") references "backup_destination" ("id") on update cascade;`);
    this.addSql(`alter table "backup" add constraint "backup_task_id_foreign" foreign key ("task_id") references "task" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "backup" add constraint "backup_parent_id_foreign" foreign key ("parent_id") references "backup" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "restore" add constraint "restore_backup_id_foreign" foreign key ("backup_id") references "backup" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "restore" add constraint "restore_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "restore" add constraint "restore_task_id_foreign" foreign key ("task_id") references "task" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "restore" add constraint "restore_zone_id_foreign" foreign key ("zone_id") references "availability_zone" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "volume_type" add constraint "volume_type_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "volume" add constraint "volume_cloud_id_foreign" foreign key ("cloud_id") references "cloud" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "volume" add constraint "volume_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "volume" add constraint "volume_instance_id_foreign" foreign key ("instance_id") references "instance" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "volume" add constraint "volume_volume_type_id_foreign" foreign key ("volume_type_id") references "volume_type" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "backup_disk" add constraint "backup_disk_backup_id_foreign" foreign key ("backup_id") references "backup" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "backup_disk" add constraint "backup_disk_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "backup_disk" add constraint "backup_disk_volume_id_foreign" foreign key ("volume_id") references "volume" ("id") on update cascade on delete set null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "backup_destination_node_configuration" drop constraint "backup_destination_node_configuration_backup_des_0fad8_foreign";`);

    this.addSql(`alter table "policy" drop constraint "policy_destination_id_foreign";`);

    this.addSql(`alter table "backup_destination_project" drop constraint "backup_destination_project_backup_destination_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_destination_id_foreign";`);

    this.addSql(`alter table "backup" drop constraint "backup_destination_id_foreign";`);

    this.addSql(`alter table "data_mover" drop constraint "data_mover_node_configuration_id_foreign";`);

    this.addSql(`alter table "cloud" drop constraint "cloud_node_configuration_id_foreign";`);

    this.addSql(`alter table "backup_destination_node_configuration" drop constraint "backup_destination_node_configuration_node_confi_b190e_foreign";`);

    this.addSql(`alter table "storage_provider" drop constraint "storage_provider_node_configuration_id_foreign";`);

    this.addSql(`alter table "availability_zone" drop constraint "availability_zone_node_configuration_id_foreign";`);

    this.addSql(`alter table "hypervisor" drop constraint "hypervisor_node_configuration_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_data_mover_id_foreign";`);

    this.addSql(`alter table "node_configuration" drop constraint "node_configuration_cloud_id_foreign";`);

    this.addSql(`alter table "network" drop constraint "network_cloud_id_foreign";`);

    this.addSql(`alter table "image" drop constraint "image_cloud_id_foreign";`);

    this.addSql(`alter table "flavor" drop constraint "flavor_cloud_id_foreign";`);

    this.addSql(`alter table "cloud_auth_domain" drop constraint "cloud_auth_domain_cloud_id_foreign";`);

    this.addSql(`alter table "project" drop constraint "project_cloud_id_foreign";`);

    this.addSql(`alter table "availability_zone" drop constraint "availability_zone_cloud_id_foreign";`);

    this.addSql(`alter table "hypervisor" drop constraint "hypervisor_cloud_id_foreign";`);

    this.addSql(`alter table "instance" drop constraint "instance_cloud_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_cloud_id_foreign";`);

    this.addSql(`alter table "backup" drop constraint "backup_cloud_id_foreign";`);

    this.addSql(`alter table "volume_type" drop constraint "volume_type_cloud_id_foreign";`);

    this.addSql(`alter table "volume" drop constraint "volume_cloud_id_foreign";`);

    this.addSql(`alter table "instance" drop constraint "instance_image_id_foreign";`);

    this.addSql(`alter table "instance" drop constraint "instance_flavor_id_foreign";`);

    this.addSql(`alter table "policy_project" drop constraint "policy_project_policy_id_foreign";`);

    this.addSql(`alter table "instance" drop constraint "instance_policy_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_policy_id_foreign";`);

    this.addSql(`alter table "backup" drop constraint "backup_policy_id_foreign";`);

    this.addSql(`alter table "policy_project" drop constraint "policy_project_project_id_foreign";`);

    this.addSql(`alter table "backup_destination_project" drop constraint "backup_destination_project_project_id_foreign";`);

    this.addSql(`alter table "quota_assignment" drop constraint "quota_assignment_project_id_foreign";`);

    this.addSql(`alter table "service_account_project" drop constraint "service_account_project_project_id_foreign";`);

    this.addSql(`alter table "instance" drop constraint "instance_project_id_foreign";`);

    this.addSql(`alter table "availability_zone_project" drop constraint "availability_zone_project_project_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_project_id_foreign";`);

    this.addSql(`alter table "backup" drop constraint "backup_project_id_foreign";`);

    this.addSql(`alter table "restore" drop constraint "restore_project_id_foreign";`);

    this.addSql(`alter table "volume" drop constraint "volume_project_id_foreign";`);

    this.addSql(`alter table "backup_disk" drop constraint "backup_disk_project_id_foreign";`);

    this.addSql(`alter table "quota_assignment" drop constraint "quota_assignment_quota_id_foreign";`);

    this.addSql(`alter table "service_account_project" drop constraint "service_account_project_service_account_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_created_by_id_foreign";`);

    this.addSql(`alter table "availability_zone" drop constraint "availability_zone_storage_provider_id_foreign";`);

    this.addSql(`alter table "hypervisor" drop constraint "hypervisor_zone_id_foreign";`);

    this.addSql(`alter table "instance" drop constraint "instance_zone_id_foreign";`);

    this.addSql(`alter table "availability_zone_project" drop constraint "availability_zone_project_availability_zone_id_foreign";`);

    this.addSql(`alter table "backup" drop constraint "backup_zone_id_foreign";`);

    this.addSql(`alter table "restore" drop constraint "restore_zone_id_foreign";`);

    this.addSql(`alter table "instance" drop constraint "instance_hypervisor_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_instance_id_foreign";`);

    this.addSql(`alter table "backup" drop constraint "backup_instance_id_foreign";`);

    this.addSql(`alter table "volume" drop constraint "volume_instance_id_foreign";`);

    this.addSql(`alter table "backup" drop constraint "backup_task_id_foreign";`);

    this.addSql(`alter table "restore" drop constraint "restore_task_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_backup_id_foreign";`);

    this.addSql(`alter table "backup" drop constraint "backup_parent_id_foreign";`);

    this.addSql(`alter table "restore" drop constraint "restore_backup_id_foreign";`);

    this.addSql(`alter table "backup_disk" drop constraint "backup_disk_backup_id_foreign";`);

    this.addSql(`alter table "volume" drop constraint "volume_volume_type_id_foreign";`);

    this.addSql(`alter table "backup_disk" drop constraint "backup_disk_volume_id_foreign";`);

    this.addSql(`drop table if exists "audit_entry" cascade;`);

    this.addSql(`drop table if exists "backup_destination" cascade;`);

    this.addSql(`drop table if exists "idempotency_record" cascade;`);

    this.addSql(`drop table if exists "node_configuration" cascade;`);

    this.addSql(`drop table if exists "data_mover" cascade;`);

    this.addSql(`drop table if exists "cloud" cascade;`);

    this.addSql(`drop table if exists "network" cascade;`);

    this.addSql(`drop table if exists "image" cascade;`);

    this.addSql(`drop table if exists "flavor" cascade;`);

    this.addSql(`drop table if exists "cloud_auth_domain" cascade;`);

    this.addSql(`drop table if exists "backup_destination_node_configuration" cascade;`);

    this.addSql(`drop table if exists "policy" cascade;`);

    this.addSql(`drop table if exists "project" cascade;`);

    this.addSql(`drop table if exists "policy_project" cascade;`);

    this.addSql(`drop table if exists "backup_destination_project" cascade;`);

    this.addSql(`drop table if exists "quota" cascade;`);

    this.addSql(`drop table if exists "quota_assignment" cascade;`);

    this.addSql(`drop table if exists "service_account" cascade;`);

    this.addSql(`drop table if exists "service_account_project" cascade;`);

    this.addSql(`drop table if exists "signing_key" cascade;`);

    this.addSql(`drop table if exists "storage_provider" cascade;`);

    this.addSql(`drop table if exists "availability_zone" cascade;`);

    this.addSql(`drop table if exists "hypervisor" cascade;`);

    this.addSql(`drop table if exists "instance" cascade;`);

    this.addSql(`drop table if exists "availability_zone_project" cascade;`);

    this.addSql(`drop table if exists "task" cascade;`);

    this.addSql(`drop table if exists "backup" cascade;`);

    this.addSql(`drop table if exists "restore" cascade;`);

    this.addSql(`drop table if exists "volume_type" cascade;`);

    this.addSql(`drop table if exists "volume" cascade;`);

    this.addSql(`drop table if exists "backup_disk" cascade;`);
  }

}
