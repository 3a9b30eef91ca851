-- Audit log of every write made through the gateway, and idempotency keys of POSTs.
CREATE TABLE audit_log (
  id           bigserial PRIMARY KEY,
  request_id   text        NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  actor        text        NOT NULL,
  groups       text[]      NOT NULL DEFAULT '{}',
  verb         text        NOT NULL,
  kind         text        NOT NULL,
  namespace    text        NOT NULL,
  name         text,
  outcome      text        NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'succeeded', 'failed')),
  status       integer,
  detail       text,
  completed_at timestamptz
);
CREATE INDEX audit_log_request_id ON audit_log (request_id);
CREATE INDEX audit_log_object ON audit_log (namespace, kind, name, at);

CREATE TABLE idempotency_keys (
  actor        text        NOT NULL,
  key          text        NOT NULL,
  request_hash text        NOT NULL,
  status       integer,
  response     jsonb,
  headers      jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (actor, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
