/**
 * `pnpm services up|status|down` as a person runs them, on a private state directory and ports
 * (never the shared broker): up starts a KRaft broker, a second up finds it and starts nothing,
 * down leaves no broker process behind.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrl } from './support/fixtures.js';
import { freePortPair } from './support/ports.js';

const root = join(import.meta.dirname, '..');
const home = mkdtempSync(join(tmpdir(), 'oncely-services-'));
// A listener and controller port pair the OS says is free (never the shared broker's).
const port = await freePortPair();

// The jar cache is the same for every state dir: reuse the shared one so Maven is not needed again.
const sharedLib = join(root, '.oncely', 'kafka', 'lib');
if (existsSync(sharedLib)) cpSync(sharedLib, join(home, 'kafka', 'lib'), { recursive: true });

function services(...args: string[]) {
  return servicesOn(port, ...args);
}

function servicesOn(kafkaPort: number, ...args: string[]) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ONCELY_HOME: home,
    ONCELY_KAFKA_PORT: String(kafkaPort),
    DATABASE_URL: databaseUrl(),
  };
  delete env.KAFKA_BROKERS;
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/services/main.ts', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const brokerPid = () =>
  existsSync(join(home, 'kafka', 'broker.pid')) ? Number(readFileSync(join(home, 'kafka', 'broker.pid'), 'utf8')) : undefined;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

afterAll(() => {
  services('down', '--purge');
  rmSync(home, { recursive: true, force: true });
});

describe('pnpm services', () => {
  it('starts a broker once, finds it on the second up, and stops it with down', { timeout: 300_000 }, async () => {
    const first = services('up');
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain(`kafka:    127.0.0.1:${port} (local-broker, started now)`);
    const pid = brokerPid();
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid!)).toBe(true);

    const second = services('up');
    expect(second.code, second.out).toBe(0);
    expect(second.out).toContain(`kafka:    127.0.0.1:${port} (local-broker)`);
    expect(second.out).not.toContain('started now');
    expect(brokerPid()).toBe(pid);

    // The same checkout asked for another port while its broker runs: said at once, with what to do.
    const other = await freePortPair();
    const asked = Date.now();
    const elsewhere = servicesOn(other, 'up');
    expect(elsewhere.code, elsewhere.out).toBe(1);
    expect(Date.now() - asked).toBeLessThan(20_000);
    expect(elsewhere.out).toContain(
      `This checkout's broker (pid ${pid}) is already running on 127.0.0.1:${port}, and ONCELY_KAFKA_PORT asks for ${other}.`,
    );
    expect(elsewhere.out).toContain(`ONCELY_KAFKA_PORT=${port}`);
    expect(elsewhere.out).toContain('pnpm services down');
    expect(elsewhere.out).not.toContain('does not answer');
    expect(elsewhere.out).not.toContain('listeners=');
    expect(alive(pid!)).toBe(true);
    expect(JSON.parse(readFileSync(join(home, 'services.json'), 'utf8')).kafka).toMatchObject({
      brokers: [`127.0.0.1:${port}`],
      pid,
    });

    expect(services('status').out).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} answers`));

    const down = services('down');
    expect(down.code, down.out).toBe(0);
    expect(down.out).toContain('kafka broker');
    expect(alive(pid!)).toBe(false);
    const javaLeft = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('kafka.Kafka') && l.includes(home));
    expect(javaLeft).toEqual([]);
    expect(services('status').out).toMatch(/does not answer/);
  });
});
