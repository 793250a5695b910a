-- 0002: room for the managed signing keys (issue #14), under the same rules as the custom
-- key set: one versioned row that every change compare-and-sets, an audit row per change,
-- and pg_notify('resigner_signing_keys', version) in the same transaction.
--
-- A rotation is one transaction: UPDATE resigner_signing_state ... WHERE version = $expected,
-- then the key rows change state (next -> current -> previous, a new next inserted), then the
-- audit row and the notification. The partial unique indexes make "two current keys" or "two
-- next keys" impossible whatever a writer does. Private keys are stored sealed only
-- (AES-256-GCM under a key-encryption key that never enters the database), or not at all when
-- a PKCS#11/Transit backend holds them (backend_ref names the key there).

CREATE TABLE resigner_signing_state (
    id smallint PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL CHECK (version >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);

INSERT INTO resigner_signing_state (id, version) VALUES (1, 0);

CREATE TABLE resigner_signing_keys (
    kid text PRIMARY KEY,
    alg text NOT NULL,
    state text NOT NULL CHECK (state IN ('next', 'current', 'previous', 'revoked')),
    -- The public JWK as published.
    public_jwk jsonb NOT NULL CHECK (jsonb_typeof(public_jwk) = 'object'),
    -- The self-signed certificate of the key (PEM), as Auth0's API returns it.
    cert text NOT NULL,
    -- nonce || ciphertext || tag of the PKCS#8 DER; NULL when a backend holds the key.
    sealed_private bytea,
    -- Which key-encryption key sealed it (a fingerprint, never the key).
    kek_id text,
    backend_ref text,
    created_at timestamptz NOT NULL DEFAULT now(),
    current_since timestamptz,
    current_until timestamptz,
    revoked_at timestamptz,
    -- The version of resigner_signing_state that last changed this row.
    changed_in bigint NOT NULL,
    CHECK (sealed_private IS NOT NULL OR backend_ref IS NOT NULL),
    CHECK ((state = 'revoked') = (revoked_at IS NOT NULL))
);

CREATE UNIQUE INDEX resigner_signing_keys_one_current
    ON resigner_signing_keys ((state)) WHERE state = 'current';
CREATE UNIQUE INDEX resigner_signing_keys_one_next
    ON resigner_signing_keys ((state)) WHERE state = 'next';

CREATE TABLE resigner_signing_changes (
    version bigint PRIMARY KEY,
    action text NOT NULL CHECK (action IN ('create', 'rotate', 'revoke')),
    kids text[] NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);

CREATE TRIGGER resigner_signing_changes_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON resigner_signing_changes
FOR EACH STATEMENT EXECUTE FUNCTION resigner_append_only();
