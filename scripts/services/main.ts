import { down, envLines, ServiceError, status, up } from './index.js';
import { redactUrl } from './util.js';

const usage = `usage: pnpm services <up|down|status|env> [--purge]
  up      make Kafka and PostgreSQL available (idempotent) and print where they are
  down    stop what this project started (add --purge to delete the broker's data)
  status  print where the services are, starting nothing
  env     like up, then print export lines: eval "$(pnpm --silent services env)"`;

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case 'up': {
      const s = await up();
      console.log(`kafka:    ${s.kafka.brokers.join(',')} (${s.kafka.source}${s.kafka.startedNow ? ', started now' : ''})`);
      console.log(`postgres: ${redactUrl(s.postgres.url)} (${s.postgres.source})`);
      return 0;
    }
    case 'env':
      console.log(envLines(await up()));
      return 0;
    case 'down': {
      const stopped = await down({ purge: rest.includes('--purge') });
      console.log(stopped.length ? `stopped: ${stopped.join(', ')}` : 'nothing started by this project was running');
      return 0;
    }
    case 'status': {
      const s = await status();
      console.log(`kafka:    ${s.kafka}\npostgres: ${s.postgres}`);
      return 0;
    }
    default:
      console.error(usage);
      return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof ServiceError ? `services: ${e.message}` : e);
    process.exit(1);
  },
);
