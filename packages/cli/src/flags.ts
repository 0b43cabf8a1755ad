/**
 * Flags and their environment variables. Every flag `--foo-bar` is also read from `ONCELY_FOO_BAR`
 * (`--no-foo` from `ONCELY_FOO=false`); a flag on the command line wins over the variable, the
 * variable over the default. The exceptions are the flags that pick or confirm a change (a reset
 * target, `--execute`, `--yes`, `--force`, `--all`): a variable left in a shell or a deployment must
 * never turn a plan into a change. docs/cli.md lists them all in one table.
 */
import { ConfigError, OncelyError } from '@oncely/core';
import { type Command, Option } from 'commander';

/** How one flag is declared: commander's flag string plus what commander does not know. */
export interface FlagSpec {
  /** Commander's flags, e.g. `'--batch-max-records <n>'` or `'--no-progress'`. */
  flags: string;
  description: string;
  /** The default value, shown in the help. */
  default?: string | boolean;
  /** Allowed values (checked for the flag and for its variable). */
  choices?: readonly string[];
  /** Repeatable: values collect into an array; its variable holds them separated by spaces. */
  repeatable?: boolean;
  /** Required, from the flag or its variable. */
  required?: boolean;
  /** `false`: no variable, on purpose (see the module comment). Default: derived from the flag. */
  env?: false;
  /** Older variables read after the flag's own one (`KAFKA_BROKERS`, `DATABASE_URL`). */
  fallbackEnv?: readonly string[];
  /** Not listed in the help. */
  hidden?: boolean;
  /** Called with the value (for a flag given on the command line); throws to refuse it. */
  refuse?: (value: string) => never;
}

interface FlagMeta {
  spec: FlagSpec;
  env: string | undefined;
}

const meta = new WeakMap<Option, FlagMeta>();
/** The variable each option's value came from, per parsed command (for messages). */
const usedEnv = new WeakMap<Command, Map<string, string>>();

/** `--batch-max-records` → `ONCELY_BATCH_MAX_RECORDS`; `--no-progress` → `ONCELY_PROGRESS`. */
export function envName(long: string): string {
  return `ONCELY_${long
    .replace(/^--(no-)?/, '')
    .toUpperCase()
    .replace(/-/g, '_')}`;
}

const collectValues = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Adds a flag (and its environment variable) to a command. */
export function flag(cmd: Command, spec: FlagSpec): Command {
  const option = new Option(spec.flags, spec.description);
  const env = spec.env === false ? undefined : envName(option.long!);
  const vars = [env, ...(spec.fallbackEnv ?? [])].filter((v): v is string => v !== undefined);
  if (vars.length > 0) option.description += ` [env: ${vars.join(', ')}]`;
  if (spec.choices) option.choices(spec.choices);
  if (spec.default !== undefined) option.default(spec.default);
  if (spec.repeatable) option.argParser(collectValues);
  if (spec.refuse) option.argParser(spec.refuse);
  if (spec.hidden) option.hideHelp();
  meta.set(option, { spec, env });
  return cmd.addOption(option);
}

/** Adds several flags. */
export function flags(cmd: Command, specs: readonly FlagSpec[]): Command {
  for (const s of specs) flag(cmd, s);
  return cmd;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/**
 * Fills the options of the command about to run from their variables where the command line did
 * not set them, then checks the required ones. Runs as commander's preAction hook.
 */
export function applyEnvironment(cmd: Command): void {
  const used = new Map<string, string>();
  usedEnv.set(cmd, used);
  for (const option of cmd.options) {
    const m = meta.get(option);
    if (!m) continue;
    const key = option.attributeName();
    if (cmd.getOptionValueSource(key) === 'cli') continue;
    const vars = [m.env, ...(m.spec.fallbackEnv ?? [])].filter((v): v is string => v !== undefined);
    const name = vars.find((v) => (process.env[v] ?? '') !== '');
    if (name === undefined) continue;
    const raw = process.env[name]!;
    let value: string | boolean | string[];
    // `--no-x` reads ONCELY_X=false; commander's isBoolean() leaves negated flags out.
    if (option.isBoolean() || option.negate) {
      const v = raw.trim().toLowerCase();
      if (!TRUE.has(v) && !FALSE.has(v)) {
        throw new ConfigError(`${name} (${option.long}) must be true or false (also 1/0, yes/no, on/off); got ${raw}.`);
      }
      value = TRUE.has(v);
    } else if (m.spec.repeatable) {
      value = raw.split(/\s+/).filter(Boolean);
    } else {
      value = raw;
    }
    if (m.spec.choices && typeof value === 'string' && !m.spec.choices.includes(value)) {
      throw new ConfigError(`${name} (${option.long}) must be one of ${m.spec.choices.join(', ')}; got ${raw}.`);
    }
    cmd.setOptionValueWithSource(key, value, 'env');
    used.set(key, name);
  }
  for (const option of cmd.options) {
    const m = meta.get(option);
    if (!m?.spec.required || cmd.getOptionValue(option.attributeName()) !== undefined) continue;
    throw new ConfigError(`${option.long} is required${m.env ? ` (or set ${m.env})` : ''}.`);
  }
}

/**
 * A configuration error about a flag whose value came from a variable says so:
 * `--batch-max-records (from ONCELY_BATCH_MAX_RECORDS) must be …`.
 */
export function explainSource(message: string, cmd: Command | undefined): string {
  const flagName = /^--[a-z0-9-]+/.exec(message)?.[0];
  if (!cmd || !flagName) return message;
  const option = cmd.options.find((o) => o.long === flagName);
  const name = option && usedEnv.get(cmd)?.get(option.attributeName());
  return name ? `${flagName} (from ${name})${message.slice(flagName.length)}` : message;
}

/** Every option of a command and its subcommands, with its variable (for the docs and their test). */
export function listFlags(program: Command): Array<{ command: string; flag: string; env: string | undefined; hidden: boolean }> {
  const out: Array<{ command: string; flag: string; env: string | undefined; hidden: boolean }> = [];
  const walk = (cmd: Command, path: string[]) => {
    for (const option of cmd.options) {
      const m = meta.get(option);
      if (!m) continue;
      out.push({ command: path.join(' '), flag: option.long!, env: m.env, hidden: m.spec.hidden === true });
    }
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
  return out;
}

/**
 * Runs `fn` (which validates options of core or the store) and renames the options its
 * ConfigError names into the flags that set them: `Worker option batchMaxRecords must …` becomes
 * `--batch-max-records must …`. A name with a space is the opening phrase of a message about
 * that flag (`Bad worker split` → `--worker: Bad worker split …`).
 */
export function inFlagTerms<T>(names: Readonly<Record<string, string>>, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!OncelyError.is(e, 'CONFIG_INVALID')) throw e;
    let message = e.message;
    for (const [name, flagName] of Object.entries(names)) {
      // A phrase (`Bad worker split`) opens a message about that option: the flag goes in front.
      if (name.includes(' ')) {
        if (message.startsWith(name)) message = `${flagName}: ${message}`;
        continue;
      }
      message = message.replace(new RegExp(`^(?:(?:Worker|Reader) option )?${name}\\b`), flagName);
      // Bare camelCase names elsewhere in the message (cross-field rules) are safe to rename.
      if (/[A-Z]/.test(name)) message = message.replace(new RegExp(`\\b${name}\\b`, 'g'), flagName);
    }
    throw new ConfigError(message, { cause: e });
  }
}

/** Parses an integer flag; the range is checked by the option's owner (named through inFlagTerms). */
export function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(value.trim())) throw new ConfigError(`${name} must be an integer; got ${value}.`);
  return Number(value.trim());
}
