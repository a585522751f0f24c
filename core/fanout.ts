/**
 * The hybrid fan-out decision (DESIGN section 5) as a pure function: small groups and
 * 1:1 conversations are delivered on write (one publish per member inbox); large groups
 * and channels on read (one publish to group/{conv}, offline members use `sync`).
 */
export type ConvKind = 'dm' | 'group' | 'channel';
export type FanoutMode = 'write' | 'read';

export function decideFanout(kind: ConvKind, memberCount: number, writeMax: number): FanoutMode {
  if (kind === 'dm') return 'write';
  if (kind === 'channel') return 'read';
  return memberCount <= writeMax ? 'write' : 'read';
}

export function groupTopic(conv: string): string {
  return `group/${conv}`;
}
