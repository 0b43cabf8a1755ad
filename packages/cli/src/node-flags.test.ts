import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WORKER_SEMI_SPACE_MB, workerNodeFlags } from './node-flags.js';

const FLAG = `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`;

describe('workerNodeFlags', () => {
  it('caps the semi-spaces when the heap limit is 2 GiB or more', () => {
    expect(workerNodeFlags([], undefined, 4288)).toEqual([FLAG]);
    expect(workerNodeFlags([], '', 2048)).toEqual([FLAG]);
  });

  it("leaves a small machine's or container's heap to V8", () => {
    expect(workerNodeFlags([], undefined, 2047)).toEqual([]);
    expect(workerNodeFlags([], undefined, 512)).toEqual([]);
  });

  it('adds nothing when the user sized the heap, in the flags or in NODE_OPTIONS', () => {
    for (const flag of [
      '--max-semi-space-size=0',
      '--max_semi_space_size=32',
      '--min-semi-space-size=4',
      '--max-old-space-size=1024',
      '--max-heap-size=512',
    ]) {
      expect(workerNodeFlags([flag], undefined, 4288)).toEqual([]);
      expect(workerNodeFlags([], `--enable-source-maps ${flag}`, 4288)).toEqual([]);
    }
    expect(workerNodeFlags(['--max-semi-space-size', '8'], undefined, 4288)).toEqual([]);
    // Other flags are no reason to leave it out.
    expect(workerNodeFlags(['--enable-source-maps'], '--max-http-header-size=16384', 4288)).toEqual([FLAG]);
  });
});

describe('restartWithWorkerFlags', () => {
  // A real process (same pid after the exec) on machines where the flag applies.
  it.runIf(typeof process.execve === 'function' && workerNodeFlags([], process.env.NODE_OPTIONS).length > 0)(
    'starts the same process again with the flag, the same arguments and no second restart',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'oncely-node-flags-'));
      const script = join(dir, 'probe.mjs');
      const module = pathToFileURL(join(import.meta.dirname, 'node-flags.ts')).href;
      writeFileSync(
        script,
        `const pid = process.env.PROBE_PID ?? String(process.pid);
process.env.PROBE_PID = pid;
const { restartWithWorkerFlags } = await import(${JSON.stringify(module)});
restartWithWorkerFlags();
console.log(JSON.stringify({ samePid: pid === String(process.pid), execArgv: process.execArgv, args: process.argv.slice(2) }));
`,
      );
      const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
      delete env.ONCELY_NODE_FLAGS_APPLIED;
      const out = execFileSync(process.execPath, ['--import', 'tsx', script, 'run', 'a b'], { env, encoding: 'utf8' });
      const probe = JSON.parse(out.trim().split('\n').pop()!) as { samePid: boolean; execArgv: string[]; args: string[] };
      expect(probe.samePid).toBe(true);
      expect(probe.execArgv.filter((a) => a === FLAG)).toHaveLength(1);
      expect(probe.execArgv).toContain('tsx');
      expect(probe.args).toEqual(['run', 'a b']);
    },
  );
});
