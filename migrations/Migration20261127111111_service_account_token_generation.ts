import { Migration } from '@mikro-orm/migrations';

export class Migration20261127111111_service_account_token_generation extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "service_account" add column "token_generation" int not null default 0;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "service_account" drop column "token_generation";`);
  }

}
