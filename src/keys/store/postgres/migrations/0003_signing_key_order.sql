-- 0003: the order of the managed signing keys as written. The store lists keys in creation
-- order, but created_at has whole-second precision and one rotation creates a key in the same
-- second as the bootstrap's pair: the writer records each key's index in its list here, and
-- the reader orders by it (then by created_at and kid, for rows written before this column).

ALTER TABLE resigner_signing_keys ADD COLUMN position integer NOT NULL DEFAULT 0;
