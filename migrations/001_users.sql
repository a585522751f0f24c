-- Accounts, devices and the refresh tokens that keep a device signed in.
create table users (
  id             text primary key,
  password_hash  text not null,
  name           text,
  about          text,
  avatar         text,
  hide_last_seen boolean not null default false,
  last_seen      bigint,
  created_at     bigint not null
);

-- One row per (user, device). kind 'session' devices sign in with a password and
-- refresh tokens; kind 'iot' devices hold a long-lived revocable token (token_id = jti).
create table devices (
  user_id    text not null references users(id) on delete cascade,
  device_id  text not null,
  kind       text not null default 'session' check (kind in ('session', 'iot')),
  token_id   text,
  expires_at bigint,
  revoked_at bigint,
  created_at bigint not null,
  primary key (user_id, device_id)
);

-- Refresh tokens rotate on every use; all tokens of one login share a family, so a
-- reused (already rotated) token revokes the whole family.
create table refresh_tokens (
  id         text primary key,
  family     text not null,
  user_id    text not null references users(id) on delete cascade,
  device_id  text not null,
  token_hash text not null,
  expires_at bigint not null,
  used_at    bigint,
  revoked_at bigint,
  created_at bigint not null
);
create index refresh_tokens_family on refresh_tokens (family);
