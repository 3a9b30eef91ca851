// The start of every agentry program: parse flags, print help, or exit 2 with the error
// and the usage text.
import { errorMessage } from "../log.ts";

export function configOrExit<T>(
  program: string,
  load: (argv: string[]) => T | "help",
  usage: () => string,
): T {
  let config: T | "help";
  try {
    config = load(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`agentry ${program}: ${errorMessage(err)}\n\n${usage()}`);
    process.exit(2);
  }
  if (config === "help") {
    process.stdout.write(usage());
    process.exit(0);
  }
  return config;
}
