// The service's one logger (pino): a JSON line per event on stdout, human-readable when stdout
// is a terminal. Secrets are cut out by path before a line is written; code must still never put
// a secret in a message string.
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const LogLevels = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LogLevels)[number];

/** Field names that hold secrets, wherever they appear in a logged object (two levels deep). */
const SECRET_FIELDS = [
  'authorization', 'password', 'secret', 'token', 'key', 'clientSecret', 'accessToken', 'refreshToken',
  'privateKey', 'secretKey', 'secretAccessKey', 'accessKeySecret', 'masterKey', 'passphrase',
  'applicationCredentialSecret', 'credentials', 'connectionParams', 'cookie',
];
export const redactPaths = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

function levelFromEnv(env: NodeJS.ProcessEnv): LogLevel {
  const level = env.STRONGBOX_LOG_LEVEL;
  return (LogLevels as readonly string[]).includes(level ?? '') ? (level as LogLevel) : 'info';
}

const logFile = (file: string) => pino.destination({ dest: file, append: true, sync: true, mkdir: true });

/**
 * Where lines go: STRONGBOX_LOG_FILE (appended, JSON; the test suite uses it) or stdout, JSON
 * unless stdout is a terminal. Synchronous writes: a line is out before the process exits.
 */
function destination(env: NodeJS.ProcessEnv): pino.DestinationStream {
  if (env.STRONGBOX_LOG_FILE) return logFile(env.STRONGBOX_LOG_FILE);
  if (process.stdout.isTTY) return pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return pino.destination({ dest: 1, sync: true });
}

/**
 * The root logger's destination, switchable once the configuration is read: the logger exists
 * before it (modules log at import), and a log file may be named only in STRONGBOX_CONFIG_FILE.
 */
class Switchable implements pino.DestinationStream {
  constructor(
    public target: pino.DestinationStream,
    public file: string | undefined,
  ) {}

  write(line: string): void {
    this.target.write(line);
  }
}

const root = new Switchable(destination(process.env), process.env.STRONGBOX_LOG_FILE);

export function createLogger(env: NodeJS.ProcessEnv = process.env, stream: pino.DestinationStream = destination(env)): Logger {
  return pino({
    level: levelFromEnv(env),
    base: { pid: process.pid },
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths, censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
  }, stream);
}

/** The process's root logger; request and task loggers are its children (request-context.ts). */
export const logger: Logger = createLogger(process.env, root);

/** Applies the validated configuration (serve/worker call it once at start): level and log file. */
export function configureLogger(config: { logLevel: LogLevel; logFile?: string }): void {
  logger.level = config.logLevel;
  if (config.logFile && config.logFile !== root.file) {
    root.target = logFile(config.logFile);
    root.file = config.logFile;
  }
}
