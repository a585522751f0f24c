/**
 * The LocalStore contract suite (STYLE 1): one list of cases, a function of a factory, run
 * against every implementation — memory and SQLite under vitest (store-contract.test.ts),
 * IndexedDB inside headless Chromium (integration/browser.test.ts bundles this file).
 *
 * No test-framework imports here, so that the same file runs in a browser page.
 */

import type { ConversationRecord, LocalStore, OutboxEntry, StoredMessage } from '../../src/store/types.ts';

export interface StoreHandle {
  store: LocalStore;
  /** For persistent stores: close and open the same storage again (an app restart). */
  reopen?: () => Promise<LocalStore>;
}

export type StoreFactory = () => Promise<StoreHandle>;

export interface ContractCase {
  name: string;
  /** Only for stores that survive a restart. */
  persistentOnly?: boolean;
  run(handle: StoreHandle): Promise<void>;
}

export class ContractFailure extends Error {
  override readonly name = 'ContractFailure';
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function assertEqual(actual: unknown, expected: unknown, what: string): void {
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) throw new ContractFailure(`${what}\n  expected: ${e}\n  actual:   ${a}`);
}

function msg(conv: string, seq: number, text: string | undefined, extra: Partial<StoredMessage> = {}): StoredMessage {
  return {
    conv,
    seq,
    id: `${conv}-${seq}`,
    from: 'alice',
    ts: 1_000 + seq,
    body: text === undefined ? {} : { text },
    ...extra,
  };
}

const seqsOf = (messages: StoredMessage[]): number[] => messages.map((m) => m.seq);
const keysOf = (messages: StoredMessage[]): string[] => messages.map((m) => `${m.conv}:${m.seq}`);

function record(conv: string, patch: Partial<ConversationRecord> = {}): ConversationRecord {
  return { conv, synced_seq: 0, last_seq: 0, read_seq: 0, read_sent: 0, delivered_sent: 0, members: {}, ...patch };
}

function outboxEntry(id: string, text: string): OutboxEntry {
  return { id, conv: 'c1', body: { text }, created_at: 5 };
}

export const storeContractCases: ContractCase[] = [
  {
    name: 'putMessages stores new (conv, seq) keys, keeps the first write, and returns only what was new',
    async run({ store }) {
      const first = await store.putMessages([msg('c1', 1, 'one'), msg('c1', 2, 'two'), msg('c2', 1, 'other')]);
      assertEqual(keysOf(first), ['c1:1', 'c1:2', 'c2:1'], 'first batch all new');
      const second = await store.putMessages([msg('c1', 2, 'CHANGED'), msg('c1', 3, 'three'), msg('c1', 3, 'dup in batch')]);
      assertEqual(keysOf(second), ['c1:3'], 'only seq 3 is new, once');
      assertEqual((await store.getMessage('c1', 2))?.body, { text: 'two' }, 'first write wins');
      assertEqual((await store.getMessage('c1', 3))?.body, { text: 'three' }, 'first of a batch wins');
      assertEqual(await store.putMessages([]), [], 'empty batch');
    },
  },
  {
    name: 'messages round-trip exactly, with optional fields present or absent',
    async run({ store }) {
      const full = msg('c1', 7, 'reply', { reply_to: 3, media: ['m_1', 'm_2'], body: { text: 'reply', nested: { a: [1, true, null] } } });
      const event: StoredMessage = { conv: 'c1', seq: 8, from: 'bob', ts: 9, body: { event: 'member_added', user: 'carol', by: 'bob' }, kind: 'conv' };
      const bare: StoredMessage = { conv: 'c1', seq: 9, from: 'bob', ts: 10, body: {} };
      await store.putMessages([full, event, bare]);
      assertEqual(await store.getMessage('c1', 7), full, 'full message');
      assertEqual(await store.getMessage('c1', 8), event, 'conversation event entry');
      assertEqual(await store.getMessage('c1', 9), bare, 'message without id');
      assertEqual(await store.getMessage('c1', 10), undefined, 'missing seq');
      assertEqual(await store.getMessage('nope', 1), undefined, 'missing conv');
    },
  },
  {
    name: 'listMessages pages in ascending seq: newest page by default, before, after, both, limit',
    async run({ store }) {
      await store.putMessages([5, 1, 3, 2, 4, 6, 7, 8, 9, 10].map((seq) => msg('c1', seq, `m${seq}`)));
      await store.putMessages([msg('c2', 1, 'elsewhere')]);
      assertEqual(seqsOf(await store.listMessages('c1')), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'all, ascending');
      assertEqual(seqsOf(await store.listMessages('c1', { limit: 3 })), [8, 9, 10], 'newest page');
      assertEqual(seqsOf(await store.listMessages('c1', { before: 8, limit: 3 })), [5, 6, 7], 'page before 8');
      assertEqual(seqsOf(await store.listMessages('c1', { before: 3, limit: 5 })), [1, 2], 'short first page');
      assertEqual(seqsOf(await store.listMessages('c1', { after: 6, limit: 2 })), [7, 8], 'oldest after 6');
      assertEqual(seqsOf(await store.listMessages('c1', { after: 2, before: 6, limit: 10 })), [3, 4, 5], 'window');
      assertEqual(seqsOf(await store.listMessages('c1', { after: 5, before: 6 })), [], 'empty window');
      assertEqual(seqsOf(await store.listMessages('c1', { limit: 0 })), [], 'limit 0');
      assertEqual(seqsOf(await store.listMessages('nope')), [], 'unknown conv');
      assertEqual(seqsOf(await store.listMessages('c2')), [1], 'conversations are separate');
    },
  },
  {
    name: 'listMessages defaults to 50 per page',
    async run({ store }) {
      await store.putMessages(Array.from({ length: 60 }, (_, i) => msg('c1', i + 1, `m${i + 1}`)));
      const page = await store.listMessages('c1');
      assertEqual([page.length, page[0]?.seq, page.at(-1)?.seq], [50, 11, 60], 'default page');
    },
  },
  {
    name: 'values in and out are copies',
    async run({ store }) {
      const input = msg('c1', 1, 'original');
      await store.putMessages([input]);
      input.body.text = 'mutated input';
      const read = await store.getMessage('c1', 1);
      assertEqual(read?.body, { text: 'original' }, 'input mutation not stored');
      read!.body.text = 'mutated output';
      assertEqual((await store.getMessage('c1', 1))?.body, { text: 'original' }, 'output mutation not stored');
      const rec = record('c1', { members: { bob: { delivered: 1, read: 0 } } });
      await store.putConversation(rec);
      rec.members.bob!.read = 99;
      assertEqual((await store.getConversation('c1'))?.members, { bob: { delivered: 1, read: 0 } }, 'record copy');
      const entry = outboxEntry('x', 'hello');
      await store.outboxPut(entry);
      entry.body.text = 'changed';
      assertEqual((await store.outboxGet('x'))?.body, { text: 'hello' }, 'outbox copy');
    },
  },
  {
    name: 'searchMessages matches word prefixes, ignoring case and diacritics; every word must match',
    async run({ store }) {
      await store.putMessages([
        msg('c1', 1, 'Hello, World!'),
        msg('c1', 2, 'Ångström units at the Café'),
        msg('c1', 3, 'hello there'),
        msg('c1', 4, undefined, { body: { image: 'm_1' } }),
        msg('c1', 5, undefined, { body: { edit: { seq: 1, text: 'Goodbye world' } } }),
        msg('c1', 6, 'worldwide news'),
      ]);
      assertEqual(seqsOf(await store.searchMessages('hel wor')), [1], 'two prefixes, both required');
      assertEqual(seqsOf(await store.searchMessages('WORLD')).sort(), [1, 5, 6], 'case-insensitive prefix, edits included');
      assertEqual(seqsOf(await store.searchMessages('angstrom cafe')), [2], 'diacritics ignored');
      assertEqual(seqsOf(await store.searchMessages('café')), [2], 'diacritics in the query ignored');
      assertEqual(seqsOf(await store.searchMessages('orld')), [], 'no infix match');
      assertEqual(seqsOf(await store.searchMessages('hello missing')), [], 'a word without match fails the query');
      assertEqual(seqsOf(await store.searchMessages('  ,.!? ')), [], 'a query without words finds nothing');
      assertEqual(seqsOf(await store.searchMessages('m_1')), [], 'non-text bodies are not indexed');
    },
  },
  {
    name: 'searchMessages returns newest first (ts desc, conv asc, seq desc), filters by conv, honours limit',
    async run({ store }) {
      await store.putMessages([
        msg('b', 1, 'apple pie', { ts: 100 }),
        msg('a', 1, 'apple tart', { ts: 300 }),
        msg('a', 2, 'apple juice', { ts: 200 }),
        msg('b', 2, 'apple cider', { ts: 300 }),
        msg('a', 3, 'pear', { ts: 400 }),
      ]);
      assertEqual(keysOf(await store.searchMessages('apple')), ['a:1', 'b:2', 'a:2', 'b:1'], 'order');
      assertEqual(keysOf(await store.searchMessages('apple', { conv: 'b' })), ['b:2', 'b:1'], 'conv filter');
      assertEqual(keysOf(await store.searchMessages('apple', { limit: 2 })), ['a:1', 'b:2'], 'limit');
    },
  },
  {
    name: 'outbox keeps first-put order; replacing keeps the place; delete is idempotent',
    async run({ store }) {
      await store.outboxPut(outboxEntry('m3', 'third?'));
      await store.outboxPut(outboxEntry('m1', 'first?'));
      await store.outboxPut(outboxEntry('m2', 'second'));
      await store.outboxPut({ ...outboxEntry('m3', 'replaced'), to: 'bob', conv: undefined } as OutboxEntry);
      const listed = await store.outboxList();
      assertEqual(listed.map((e) => e.id), ['m3', 'm1', 'm2'], 'order of first put');
      assertEqual(await store.outboxGet('m3'), { id: 'm3', to: 'bob', body: { text: 'replaced' }, created_at: 5 }, 'replaced entry');
      await store.outboxDelete('m1');
      await store.outboxDelete('m1');
      await store.outboxDelete('never');
      assertEqual((await store.outboxList()).map((e) => e.id), ['m3', 'm2'], 'after delete');
      assertEqual(await store.outboxGet('m1'), undefined, 'deleted entry');
      await store.outboxPut(outboxEntry('m1', 'again'));
      assertEqual((await store.outboxList()).map((e) => e.id), ['m3', 'm2', 'm1'], 're-added goes last');
    },
  },
  {
    name: 'conversation records: put replaces, get copies, list is ordered by conv',
    async run({ store }) {
      assertEqual(await store.getConversation('c1'), undefined, 'missing record');
      await store.putConversation(record('c2', { synced_seq: 4, last_seq: 9, topic: 'group/c2', kind: 'group', name: null }));
      await store.putConversation(record('c1', { read_seq: 2 }));
      await store.putConversation(record('c3'));
      await store.putConversation(record('c1', { read_seq: 3, members: { bob: { delivered: 3, read: 2 } } }));
      assertEqual(
        await store.getConversation('c2'),
        record('c2', { synced_seq: 4, last_seq: 9, topic: 'group/c2', kind: 'group', name: null }),
        'all fields',
      );
      assertEqual((await store.listConversations()).map((r) => [r.conv, r.read_seq]), [['c1', 3], ['c2', 0], ['c3', 0]], 'ordered, replaced');
    },
  },
  {
    name: 'meta values',
    async run({ store }) {
      assertEqual(await store.getMeta('account'), undefined, 'missing');
      await store.setMeta('account', 'alice:phone');
      await store.setMeta('account', 'alice:laptop');
      assertEqual(await store.getMeta('account'), 'alice:laptop', 'replaced');
    },
  },
  {
    name: 'concurrent putMessages calls insert every (conv, seq) exactly once',
    async run({ store }) {
      const batches = Array.from({ length: 8 }, (_, b) => Array.from({ length: 20 }, (_, i) => msg('c1', ((b * 7 + i) % 40) + 1, `m${i}`)));
      const results = await Promise.all(batches.map((batch) => store.putMessages(batch)));
      const inserted = results.flat().map((m) => m.seq).sort((a, b) => a - b);
      const expected = [...new Set(batches.flat().map((m) => m.seq))].sort((a, b) => a - b);
      assertEqual(inserted, expected, 'each seq reported new once');
      assertEqual(seqsOf(await store.listMessages('c1', { limit: 100 })), expected, 'each seq stored once');
    },
  },
  {
    name: 'clear removes everything and the store stays usable',
    async run({ store }) {
      await store.putMessages([msg('c1', 1, 'hello')]);
      await store.outboxPut(outboxEntry('m1', 'x'));
      await store.putConversation(record('c1'));
      await store.setMeta('k', 'v');
      await store.clear();
      assertEqual(
        [await store.listMessages('c1'), await store.searchMessages('hello'), await store.outboxList(), await store.listConversations(), await store.getMeta('k')],
        [[], [], [], [], undefined],
        'all empty',
      );
      assertEqual(keysOf(await store.putMessages([msg('c1', 1, 'hello again')])), ['c1:1'], 'usable after clear');
      assertEqual(seqsOf(await store.searchMessages('again')), [1], 'search usable after clear');
    },
  },
  {
    name: 'everything survives a restart',
    persistentOnly: true,
    async run(handle) {
      const { store } = handle;
      await store.putMessages([msg('c1', 1, 'persisted words'), msg('c1', 2, 'more')]);
      await store.outboxPut(outboxEntry('m2', 'b'));
      await store.outboxPut(outboxEntry('m1', 'a'));
      await store.putConversation(record('c1', { synced_seq: 2, read_seq: 1 }));
      await store.setMeta('account', 'alice:phone');
      const reopened = await handle.reopen!();
      try {
        assertEqual(seqsOf(await reopened.listMessages('c1')), [1, 2], 'messages');
        assertEqual(seqsOf(await reopened.searchMessages('persist')), [1], 'search index');
        assertEqual((await reopened.outboxList()).map((e) => e.id), ['m2', 'm1'], 'outbox and its order');
        assertEqual(await reopened.getConversation('c1'), record('c1', { synced_seq: 2, read_seq: 1 }), 'cursor');
        assertEqual(await reopened.getMeta('account'), 'alice:phone', 'meta');
        assertEqual(keysOf(await reopened.putMessages([msg('c1', 2, 'dup'), msg('c1', 3, 'new')])), ['c1:3'], 'dedupe after restart');
      } finally {
        await reopened.close();
      }
    },
  },
];

export interface CaseResult {
  name: string;
  ok: boolean;
  skipped?: boolean;
  error?: string;
}

/** Runs every case on a fresh store (for environments without vitest, e.g. a browser page). */
export async function runStoreContract(factory: StoreFactory, persistent: boolean): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const contractCase of storeContractCases) {
    if (contractCase.persistentOnly && !persistent) {
      results.push({ name: contractCase.name, ok: true, skipped: true });
      continue;
    }
    const handle = await factory();
    try {
      await contractCase.run(handle);
      results.push({ name: contractCase.name, ok: true });
    } catch (error) {
      results.push({ name: contractCase.name, ok: false, error: error instanceof Error ? error.message : String(error) });
    } finally {
      await handle.store.close().catch(() => undefined);
    }
  }
  return results;
}
