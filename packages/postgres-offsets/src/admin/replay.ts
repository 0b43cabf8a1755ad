import { ConfigError } from '@oncely/core';
import { getCheckpoint } from './checkpoints.js';
import type { AdminContext } from './context.js';
import { executeReset, previewReset } from './reset.js';
import { nonEmpty, scopeFrom } from './reset-plan.js';
import type { AuditOptions, ReplayRequest, ResetPlan, ResetRequest, ResetTarget } from './types.js';

/** Plans (or, with `execute`, applies) starting `group` at another group's positions, checkpoint or a datetime. */
export async function replayIntoGroup(
  ctx: AdminContext,
  request: ReplayRequest,
  options: AuditOptions & { execute?: boolean },
): Promise<ResetPlan> {
  nonEmpty('--from-group', request.fromGroup);
  nonEmpty('--group', request.group);
  if (request.fromGroup === request.group) {
    throw new ConfigError(`replay needs two different groups; --from-group and --group are both ${request.group}.`);
  }
  const existing = await ctx.store.getPositions(request.group);
  if (existing.length > 0 && !request.force && options.execute) {
    throw new ConfigError(
      `Group ${request.group} already has ${existing.length} stored position(s); replay starts a new group. ` +
        'Use `oncely offsets reset` to move it, or pass force to overwrite its positions.',
    );
  }
  // The partitions replayed are the source's (or its checkpoint's), narrowed by topics.
  let sourceParts: Array<{ topic: string; partition: number }>;
  if (request.to?.kind === 'checkpoint') sourceParts = await getCheckpoint(ctx, request.to.name, request.fromGroup);
  else sourceParts = await ctx.store.getPositions(request.fromGroup);
  if (sourceParts.length === 0) throw new ConfigError(`Group ${request.fromGroup} has no stored positions to replay from.`);
  const scope = scopeFrom(sourceParts, request.topics);
  const to: ResetTarget =
    request.to === undefined
      ? { kind: 'group', group: request.fromGroup }
      : request.to.kind === 'checkpoint'
        ? { kind: 'checkpoint', name: request.to.name, group: request.fromGroup }
        : { kind: 'datetime', at: request.to.at };
  const reset: ResetRequest = { group: request.group, topics: scope, to };
  if (!options.execute) return previewReset(ctx, reset);
  return executeReset(ctx, reset, 'offsets.replay', options, { fromGroup: request.fromGroup });
}
