-- 0001: the custom key set shared by every replica, and its append-only audit trail.
--
-- resigner_key_set holds exactly one row (id = 1): the whole set as the management API
-- accepted it. Every write is one transaction:
--   UPDATE resigner_key_set SET version = version + 1, ... WHERE id = 1 AND version = $expected
-- (no row updated: another writer won, a Conflict), an INSERT into resigner_key_changes, and
-- pg_notify('resigner_keys', version) -- delivered to the listening replicas on commit only.
-- NOTIFY is a wake-up: replicas read the row on every notification, on every reconnect and
-- on a periodic poll, and install any version they do not have.

CREATE TABLE resigner_key_set (
    id smallint PRIMARY KEY CHECK (id = 1),
    -- Increases by one with every write; never goes back.
    version bigint NOT NULL CHECK (version >= 0),
    -- The JWKs, in import order (public members only: the API refuses private ones).
    keys jsonb NOT NULL CHECK (jsonb_typeof(keys) = 'array'),
    -- {kid: unix seconds} when each kid was first published (min_published_age).
    published_at jsonb NOT NULL CHECK (jsonb_typeof(published_at) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);

INSERT INTO resigner_key_set (id, version, keys, published_at)
VALUES (1, 0, '[]', '{}');

-- One row per committed change, keyed by the version it made.
CREATE TABLE resigner_key_changes (
    version bigint PRIMARY KEY,
    action text NOT NULL CHECK (action IN ('put', 'delete')),
    kids text[] NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);

-- Append-only: a change once recorded is never edited or removed through SQL.
CREATE FUNCTION resigner_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER resigner_key_changes_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON resigner_key_changes
FOR EACH STATEMENT EXECUTE FUNCTION resigner_append_only();
