import { Migration } from '@mikro-orm/migrations';

export class Migration20261127180000_hypervisor_netcat_port extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "hypervisor" add column "netcat_port" int null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "hypervisor" drop column "netcat_port";`);
  }

}
