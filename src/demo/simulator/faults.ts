// Fault injection: answer chosen requests with an error status, never answer (a hang), break
// an upload or stall a download, a given number of times; and attachments that never complete. Set programmatically or over
// the simulator's admin endpoint (`POST /__sim/faults`).

export type FaultRule = {
  /** HTTP method to match; any when absent. */
  method?: string;
  /** A regular expression matched against the request path (with its service prefix). */
  path: string;
  /** Answer with this status (5xx usually)… */
  status?: number;
  /** …or never answer… */
  hang?: boolean;
  /** …or read this many bytes of the request body, then drop the connection (a broken upload)… */
  dropAfterBytes?: number;
  /** …or send this many bytes of a streamed answer, then nothing more, connection open (a stalled download). */
  stallAfterBytes?: number;
  /** How many requests this rule applies to. */
  times: number;
};

export class Faults {
  rules: (FaultRule & { re: RegExp; hits: number })[] = [];
  /** When on, attach requests are accepted but the volume stays `attaching` forever. */
  neverCompleteAttach = false;

  add(rule: FaultRule): void {
    if (!rule.hang && !rule.status && rule.dropAfterBytes === undefined && rule.stallAfterBytes === undefined) {
      throw new Error('a fault needs a status, hang: true, dropAfterBytes or stallAfterBytes');
    }
    this.rules.push({ ...rule, re: new RegExp(rule.path), hits: 0 });
  }

  clear(): void {
    this.rules = [];
    this.neverCompleteAttach = false;
  }

  /** The rule that applies to this request, consuming one of its uses. */
  take(method: string, path: string): FaultRule | undefined {
    const rule = this.rules.find((r) => r.hits < r.times && (!r.method || r.method === method) && r.re.test(path));
    if (rule) rule.hits++;
    return rule;
  }
}
