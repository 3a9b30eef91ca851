// `node --import tsx gateway/migrate.ts` (npm run gateway:migrate): applies the gateway's
// schema migrations to DATABASE_URL. Idempotent; run it before starting a new gateway version
// (the Helm chart runs it as a pre-install/pre-upgrade Job).
import { migrate, pendingMigrations } from "./store/migrations.ts";
import { createPool } from "./store/store.ts";
import { errorMessage } from "../lib/log.ts";

const url = process.env.DATABASE_URL ?? process.argv[2];
if (!url) {
  process.stderr.write("gateway migrate: set DATABASE_URL (or pass the URL as the argument)\n");
  process.exit(2);
}
const pool = createPool(url, 1);
try {
  const check = process.argv.includes("--check");
  const pending = await pendingMigrations(pool);
  if (check) {
    process.stdout.write(pending.length ? `pending: ${pending.join(", ")}\n` : "schema is current\n");
    process.exitCode = pending.length ? 1 : 0;
  } else {
    const applied = await migrate(pool);
    process.stdout.write(
      applied.length ? `applied: ${applied.join(", ")}\n` : "schema is current; nothing to apply\n",
    );
  }
} catch (err) {
  process.stderr.write(`gateway migrate: ${errorMessage(err)}\n`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
