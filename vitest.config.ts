import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources, so tests never run against a stale build.
const alias = [
  {
    find: /^@oncely\/core\/testing$/,
    replacement: resolve(import.meta.dirname, 'packages/core/src/testing/index.ts'),
  },
  {
    find: /^@oncely\/(core|postgres-offsets|cli|examples)$/,
    replacement: resolve(import.meta.dirname, 'packages/$1/src/index.ts'),
  },
];

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          // Unit tests first, then integration: their worker limits differ, so they run as groups.
          sequence: { groupOrder: 0 },
          // A contract run against an in-memory implementation needs no services.
          include: ['packages/*/src/**/*.test.ts', 'test/**/*.unit.test.ts'],
          environment: 'node',
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.unit.test.ts', '**/node_modules/**'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          // Hang guards, not timings: a CLI test runs many processes and a loaded machine is slow.
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Two cores: more parallel files only add broker and database contention.
          maxWorkers: 2,
        },
      },
    ],
  },
});
