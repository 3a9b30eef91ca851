// Structured JSON logs (winston): one object per line with time, level, msg and keys.
import winston from "winston";

export type Logger = winston.Logger;

/** The least a component needs of a logger (winston's fits; tests pass plain functions). */
export interface Log {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
}

export function createLogger(
  level = process.env.AGENTRY_LOG_LEVEL ?? "info",
  component = "operator",
): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { component },
    format: winston.format.combine(
      winston.format.timestamp({ alias: "time" }),
      winston.format.errors({ stack: false }),
      winston.format((info) => {
        delete info.timestamp;
        return info;
      })(),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console({ stderrLevels: [] })],
  });
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true });
}

/** The message of a thrown value: an Error's message, anything else as text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
