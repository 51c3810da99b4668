// A real `strongbox <command>` child process (node --import tsx src/main.ts …), with its output
// collected, for tests of what a process does as a whole: start, configuration, signals, exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import path from 'node:path';

export type StrongboxProcess = {
  child: ChildProcess;
  /** Its output: the startup lines and its JSON log lines. */
  stdout(): string;
  stderr(): string;
  /** The first match of `re` on stdout (waits for it; fails if the process exits first). */
  waitForOutput(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  /** Resolves when the process exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

export function startStrongbox(args: string[], env: Record<string, string>): StrongboxProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    // Its log lines on stdout, for the test to read; they join the suite's log (and its secret
    // scan, test/global-setup.ts) when it exits.
    env: { ...process.env, STRONGBOX_LOG_FILE: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const suiteLog = process.env.STRONGBOX_LOG_FILE;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => {
    if (suiteLog) appendFileSync(suiteLog, out.split('\n').filter((l) => l.startsWith('{')).map((l) => `${l}\n`).join(''));
    resolve({ code, signal });
  }));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForOutput(re, ms = 60_000) {
      const end = Date.now() + ms;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`strongbox ${args[0]} exited (${child.exitCode ?? child.signalCode}) before printing ${re}: ${err}`);
        if (Date.now() > end) throw new Error(`strongbox ${args[0]} did not print ${re}: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
