ALTER TABLE tenants ADD COLUMN plan TEXT NOT NULL DEFAULT 'trial';

CREATE TABLE users (
    id                 BLOB PRIMARY KEY NOT NULL,
    email              TEXT NOT NULL,
    display_name       TEXT NOT NULL,
    -- NULL until the person sets a password through an invitation link.
    password_hash      TEXT,
    is_platform_admin  BOOLEAN NOT NULL DEFAULT FALSE,
    password_changed_at TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    CONSTRAINT uq_users_email UNIQUE (email)
);

CREATE TABLE memberships (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX ix_memberships_user ON memberships (user_id);

-- Console sessions: the signed cookie names a row here, so logout and password changes revoke
-- it server-side.
CREATE TABLE sessions (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   BLOB REFERENCES tenants (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX ix_sessions_user ON sessions (user_id);

-- Single-use links: invitations (tenant, role) and password resets. Only a hash of the token
-- is stored.
CREATE TABLE action_tokens (
    id          BLOB PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('invite', 'reset')),
    token_hash  TEXT NOT NULL,
    email       TEXT NOT NULL,
    tenant_id   BLOB REFERENCES tenants (id) ON DELETE CASCADE,
    role        TEXT CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    CONSTRAINT uq_action_tokens_token_hash UNIQUE (token_hash)
);
CREATE INDEX ix_action_tokens_tenant ON action_tokens (tenant_id);

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)
);
CREATE INDEX ix_api_keys_tenant ON api_keys (tenant_id);
