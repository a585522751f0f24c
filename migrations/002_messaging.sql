-- Conversations: 1:1 ('dm', one per pair through dm_key), groups and channels.
-- last_seq is the conversation's sequence counter: every stored message takes the next one.
-- fanout is the delivery mode in force ('write' or 'read'); it changes in the same
-- transaction as the membership change that crosses the threshold.
create table conversations (
  id            text primary key,
  kind          text not null check (kind in ('dm', 'group', 'channel')),
  name          text,
  dm_key        text unique,
  last_seq      integer not null default 0,
  announce_only boolean not null default false,
  fanout        text not null default 'write' check (fanout in ('write', 'read')),
  member_count  integer not null default 0,
  created_by    text,
  created_at    bigint not null,
  last_activity bigint not null
);

create table members (
  conv          text not null references conversations(id) on delete cascade,
  user_id       text not null references users(id) on delete cascade,
  role          text not null default 'member' check (role in ('owner', 'admin', 'member')),
  read_seq      integer not null default 0,
  delivered_seq integer not null default 0,
  joined_seq    integer not null default 0,
  joined_at     bigint not null,
  primary key (conv, user_id)
);
create index members_user on members (user_id);

-- Append-only: edits, deletions and reactions are new rows that refer to an earlier seq.
-- kind 'msg' is a user message, 'conv' a membership or settings event.
create table messages (
  conv      text not null references conversations(id) on delete cascade,
  seq       integer not null,
  sender    text not null,
  client_id text not null,
  kind      text not null default 'msg' check (kind in ('msg', 'conv')),
  body      jsonb not null,
  reply_to  integer,
  media     jsonb,
  ts        bigint not null,
  primary key (conv, seq)
);
create unique index messages_sender_client on messages (sender, client_id);

create table blocks (
  user_id    text not null references users(id) on delete cascade,
  blocked    text not null references users(id) on delete cascade,
  created_at bigint not null,
  primary key (user_id, blocked)
);
