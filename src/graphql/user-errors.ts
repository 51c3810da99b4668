// Shopify-style business errors: every mutation payload carries `userErrors`; a refusal
// (quota, not allowed, invalid value) is data with a stable code, and changes nothing.
import { builder } from './builder.ts';

export type UserError = { code: string; field?: string[]; message: string };

export const UserErrorRef = builder.objectRef<UserError>('UserError').implement({
  description: 'Why a mutation was refused; `code` is stable, `message` is for people',
  fields: (t) => ({
    code: t.exposeString('code'),
    field: t.stringList({ nullable: true, description: 'Path of the input field at fault', resolve: (e) => e.field ?? null }),
    message: t.exposeString('message'),
  }),
});

/** Thrown inside a mutation's transaction to roll it back and answer with userErrors. */
export class UserErrorException extends Error {
  constructor(readonly errors: UserError[]) {
    super(errors.map((e) => e.message).join('; '));
  }
  static of(code: string, message: string, field?: string[]) {
    return new UserErrorException([{ code, message, field }]);
  }
}
