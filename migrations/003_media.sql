-- Media (DESIGN section 6): metadata per upload in `media`, bytes once per sha256 in
-- `media_blobs` (object key derived from the sha256), deleted when no live item refers
-- to them. Times are Unix ms in bigint like the other migrations.
--
-- No foreign keys to users or conversations on purpose: a media row outlives neither by
-- cascade (a cascade would drop rows without releasing their blob references), and a
-- deleted item stays as a tombstone that messages keep pointing at.

-- One row per stored sha256. refcount = live (state 'complete') media rows using it.
-- tier is where the bytes are now; thumbnail_key is the preview object, if any (always hot).
create table media_blobs (
  sha256               text primary key check (sha256 ~ '^[0-9a-f]{64}$'),
  size                 bigint not null check (size >= 0),
  object_key           text not null,
  thumbnail_key        text,
  thumbnail_type       text,
  tier                 text not null default 'hot' check (tier in ('hot', 'warm', 'cold')),
  refcount             integer not null check (refcount >= 0),
  created_at           bigint not null,
  tier_changed_at      bigint not null,
  restore_requested_at bigint
);
create index media_blobs_tier on media_blobs (tier);

-- One row per upload. pending: upload URL handed out, bytes not verified yet (upload_key
-- names the staging object). complete: bytes verified and stored in media_blobs.
-- deleted: a tombstone (retention); the message that lists the id keeps listing it.
-- tier mirrors media_blobs.tier, written in the same transaction as every move, so a
-- record and the per-conversation reports need no join.
create table media (
  id             text primary key,
  owner          text not null,
  conv           text not null,
  content_type   text not null,
  size           bigint not null check (size > 0),
  sha256         text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  state          text not null default 'pending' check (state in ('pending', 'complete', 'deleted')),
  tier           text check (tier in ('hot', 'warm', 'cold')),
  upload_key     text,
  created_at     bigint not null,
  completed_at   bigint,
  last_access_at bigint,
  deleted_at     bigint,
  deleted_reason text
);
create index media_conv on media (conv);
-- (sha256, id): the tiering worker walks live items blob by blob in this order.
create index media_sha256 on media (sha256, id) where state = 'complete';
create index media_owner_pending on media (owner, created_at) where state = 'pending';
