//! Users, memberships with roles, sessions, single-use action tokens and API keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pool::{on_pool, on_write};
use crate::{
    ActionTokenId, ApiKeyId, SessionId, Store, StoreError, Tenant, TenantId, TenantStatus, UserId,
};

/// A person's role within one tenant, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// View everything, replay runs, pause pairs.
    Operator,
    /// Everything but billing and deleting the tenant.
    Admin,
    /// Everything.
    Owner,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::Viewer];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }

    fn decode(value: &str) -> Result<Role, StoreError> {
        Role::parse(value).ok_or_else(|| StoreError::Corrupt {
            what: "role",
            detail: value.to_owned(),
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person who can log in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Lower-cased email address; unique.
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// Platform administrators manage tenants; this is not a tenant role.
    pub is_platform_admin: bool,
    /// False until the person has set a password through an invitation.
    pub has_password: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: UserId,
    email: String,
    display_name: String,
    password_hash: Option<String>,
    is_platform_admin: bool,
    created_at: DateTime<Utc>,
}

impl UserRow {
    fn split(self) -> (User, Option<String>) {
        let user = User {
            id: self.id,
            email: self.email,
            display_name: self.display_name,
            is_platform_admin: self.is_platform_admin,
            has_password: self.password_hash.is_some(),
            created_at: self.created_at,
        };
        (user, self.password_hash)
    }
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash, is_platform_admin, created_at";

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Email address (normalised to lower case).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// An argon2id PHC string, or `None` for an invited person who has not chosen one yet.
    pub password_hash: Option<String>,
    /// Whether this is a platform administrator.
    pub is_platform_admin: bool,
}

/// A user's membership in a tenant, as seen from the tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The person.
    pub user: User,
    /// Their role here.
    pub role: Role,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// A console session row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    /// Primary key; carried in the signed cookie.
    pub id: SessionId,
    /// Whose session.
    pub user_id: UserId,
    /// The tenant currently selected, if any.
    pub tenant_id: Option<TenantId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops being valid unless renewed.
    pub expires_at: DateTime<Utc>,
    /// When it was ended by logout or a password change.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a single-use link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Join a tenant with a role (and set a password if new).
    Invite,
    /// Choose a new password.
    Reset,
}

impl ActionKind {
    fn as_str(self) -> &'static str {
        match self {
            ActionKind::Invite => "invite",
            ActionKind::Reset => "reset",
        }
    }
}

/// An invitation or password-reset token (only its hash is stored).
#[derive(Debug, Clone, Serialize)]
pub struct ActionToken {
    /// Primary key.
    pub id: ActionTokenId,
    /// Invitation or reset.
    pub kind: ActionKind,
    /// Who it was sent to.
    pub email: String,
    /// For invitations: the tenant joined.
    pub tenant_id: Option<TenantId>,
    /// For invitations: the role given.
    pub role: Option<Role>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was used, if it was.
    pub used_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ActionTokenRow {
    id: ActionTokenId,
    kind: String,
    email: String,
    tenant_id: Option<TenantId>,
    role: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

impl TryFrom<ActionTokenRow> for ActionToken {
    type Error = StoreError;
    fn try_from(row: ActionTokenRow) -> Result<Self, StoreError> {
        let kind = match row.kind.as_str() {
            "invite" => ActionKind::Invite,
            "reset" => ActionKind::Reset,
            other => {
                return Err(StoreError::Corrupt {
                    what: "action_tokens.kind",
                    detail: other.to_owned(),
                });
            }
        };
        Ok(ActionToken {
            id: row.id,
            kind,
            email: row.email,
            tenant_id: row.tenant_id,
            role: row.role.as_deref().map(Role::decode).transpose()?,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            used_at: row.used_at,
        })
    }
}

const TOKEN_COLUMNS: &str =
    "id, kind, email, tenant_id, role, created_by, created_at, expires_at, used_at";

/// What it takes to create an action token.
#[derive(Debug, Clone)]
pub struct NewActionToken {
    /// Invitation or reset.
    pub kind: ActionKind,
    /// Hex SHA-256 of the token sent by email.
    pub token_hash: String,
    /// Recipient.
    pub email: String,
    /// For invitations: the tenant.
    pub tenant_id: Option<TenantId>,
    /// For invitations: the role.
    pub role: Option<Role>,
    /// Who created it.
    pub created_by: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// An API key's metadata (the key itself is shown once and stored only as a hash).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// Primary key.
    pub id: ApiKeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// A name chosen by its creator.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: ApiKeyId,
    tenant_id: TenantId,
    name: String,
    role: String,
    prefix: String,
    created_by: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        Ok(ApiKey {
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            role: Role::decode(&row.role)?,
            prefix: row.prefix,
            created_by: row.created_by,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

const KEY_COLUMNS: &str =
    "id, tenant_id, name, role, prefix, created_by, created_at, last_used_at, revoked_at";

/// What it takes to create an API key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Display name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// First characters of the key.
    pub prefix: String,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    /// Who created it.
    pub created_by: String,
}

/// A tenant with the counts the platform admin's list shows.
#[derive(Debug, Clone, Serialize)]
pub struct TenantSummary {
    /// The tenant.
    pub tenant: Tenant,
    /// How many users belong to it.
    pub users: i64,
    /// How many integration pairs it has (any status).
    pub pairs: i64,
}

fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn affected<R: RowsAffected>(result: R) -> u64 {
    result.rows()
}

/// Row counts of either backend's query result.
trait RowsAffected {
    fn rows(&self) -> u64;
}
impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}
impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

impl Store {
    /// Creates a user; a taken email is `Conflict { constraint: "uq_users_email" }`.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO users (id, email, display_name, password_hash, is_platform_admin, password_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {USER_COLUMNS}"
        );
        let changed = new.password_hash.as_ref().map(|_| now);
        let row: UserRow = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(UserId::new())
                .bind(normalise_email(&new.email))
                .bind(new.display_name.trim())
                .bind(&new.password_hash)
                .bind(new.is_platform_admin)
                .bind(changed)
                .bind(now)
                .fetch_one(pool)
                .await
        })?;
        Ok(row.split().0)
    }

    /// The user with this email and their password hash, if any.
    pub async fn user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row: Option<UserRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(normalise_email(email)).fetch_optional(pool).await)?;
        Ok(row.map(UserRow::split))
    }

    /// The user with this id.
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(|r| r.split().0))
    }

    /// How many platform administrators exist.
    pub async fn count_platform_admins(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM users WHERE is_platform_admin = $1";
        let count: i64 =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(true).fetch_one(pool).await)?;
        Ok(count)
    }

    /// Replaces a user's password hash and ends every session they have.
    pub async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError> {
        let now = Utc::now();
        let sql = "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1";
        let rows = on_write!(self, pool => {
            sqlx::query(sql).bind(user).bind(password_hash).bind(now).execute(pool).await.map(affected)
        })?;
        if rows == 0 {
            return Err(StoreError::NotFound);
        }
        self.revoke_user_sessions(user).await
    }

    /// Every tenant the user belongs to, with their role, by tenant name.
    pub async fn memberships_of(&self, user: UserId) -> Result<Vec<(Tenant, Role)>, StoreError> {
        let sql = "SELECT t.id, t.slug, t.name, t.status, t.plan, t.created_at, t.updated_at, m.role \
                   FROM memberships m JOIN tenants t ON t.id = m.tenant_id WHERE m.user_id = $1 ORDER BY t.name, t.id";
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            tenant: crate::tenants::TenantRow,
            role: String,
        }
        let rows: Vec<Row> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(user).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|row| Ok((Tenant::try_from(row.tenant)?, Role::decode(&row.role)?)))
            .collect()
    }

    /// The user's role in the tenant, if they are a member.
    pub async fn membership(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<Role>, StoreError> {
        let sql = "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2";
        let role: Option<String> = on_pool!(self, pool => sqlx::query_scalar(sql).bind(tenant).bind(user).fetch_optional(pool).await)?;
        role.as_deref().map(Role::decode).transpose()
    }

    /// Adds the user to the tenant, or changes their role if already a member.
    pub async fn upsert_member(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(user).bind(role.as_str()).bind(Utc::now()).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Changes a member's role; `NotFound` when the user is not a member of this tenant.
    pub async fn set_member_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2";
        let rows = on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(user).bind(role.as_str()).execute(pool).await.map(affected)
        })?;
        if rows == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Removes a member; `NotFound` when the user is not a member of this tenant.
    pub async fn remove_member(&self, tenant: TenantId, user: UserId) -> Result<(), StoreError> {
        let sql = "DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2";
        let rows = on_write!(self, pool => sqlx::query(sql).bind(tenant).bind(user).execute(pool).await.map(affected))?;
        if rows == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// The tenant's members, by email.
    pub async fn tenant_members(&self, tenant: TenantId) -> Result<Vec<Member>, StoreError> {
        let sql = "SELECT u.id, u.email, u.display_name, u.password_hash, u.is_platform_admin, u.created_at, \
                   m.role, m.created_at AS joined_at \
                   FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 ORDER BY u.email";
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            role: String,
            joined_at: DateTime<Utc>,
        }
        let rows: Vec<Row> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|row| {
                Ok(Member {
                    role: Role::decode(&row.role)?,
                    joined_at: row.joined_at,
                    user: row.user.split().0,
                })
            })
            .collect()
    }

    /// How many owners the tenant has (the last one cannot be demoted or removed).
    pub async fn count_owners(&self, tenant: TenantId) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'";
        let count: i64 =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(tenant).fetch_one(pool).await)?;
        Ok(count)
    }

    /// Every tenant with its user and pair counts, for the platform admin.
    pub async fn tenant_summaries(&self) -> Result<Vec<TenantSummary>, StoreError> {
        let sql = "SELECT t.id, t.slug, t.name, t.status, t.plan, t.created_at, t.updated_at, \
                   (SELECT COUNT(*) FROM memberships m WHERE m.tenant_id = t.id) AS users, \
                   (SELECT COUNT(*) FROM pairs p WHERE p.tenant_id = t.id) AS pairs \
                   FROM tenants t ORDER BY t.name, t.id";
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            tenant: crate::tenants::TenantRow,
            users: i64,
            pairs: i64,
        }
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|row| {
                Ok(TenantSummary {
                    tenant: Tenant::try_from(row.tenant)?,
                    users: row.users,
                    pairs: row.pairs,
                })
            })
            .collect()
    }

    // --- Sessions -------------------------------------------------------------------------

    /// Starts a session.
    pub async fn create_session(
        &self,
        user: UserId,
        tenant: Option<TenantId>,
        expires_at: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        let sql = "INSERT INTO sessions (id, user_id, tenant_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
                   RETURNING id, user_id, tenant_id, created_at, expires_at, revoked_at";
        let session = on_write!(self, pool => {
            sqlx::query_as(sql).bind(SessionId::new()).bind(user).bind(tenant).bind(Utc::now()).bind(expires_at).fetch_one(pool).await
        })?;
        Ok(session)
    }

    /// The session with this id, revoked or not.
    pub async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let sql = "SELECT id, user_id, tenant_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1";
        let session =
            on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        Ok(session)
    }

    /// Selects the tenant a session works in.
    pub async fn set_session_tenant(
        &self,
        id: SessionId,
        tenant: TenantId,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE sessions SET tenant_id = $2 WHERE id = $1 AND revoked_at IS NULL";
        on_write!(self, pool => sqlx::query(sql).bind(id).bind(tenant).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Pushes a live session's expiry out.
    pub async fn renew_session(
        &self,
        id: SessionId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE sessions SET expires_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        on_write!(self, pool => sqlx::query(sql).bind(id).bind(expires_at).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Ends one session (logout).
    pub async fn revoke_session(&self, id: SessionId) -> Result<(), StoreError> {
        let sql = "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        on_write!(self, pool => sqlx::query(sql).bind(id).bind(Utc::now()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Ends every session of a user (password change, removal).
    pub async fn revoke_user_sessions(&self, user: UserId) -> Result<(), StoreError> {
        let sql = "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
        on_write!(self, pool => sqlx::query(sql).bind(user).bind(Utc::now()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    // --- Action tokens --------------------------------------------------------------------

    /// Stores a new invitation or reset token.
    pub async fn create_action_token(
        &self,
        new: &NewActionToken,
    ) -> Result<ActionToken, StoreError> {
        let sql = format!(
            "INSERT INTO action_tokens (id, kind, token_hash, email, tenant_id, role, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {TOKEN_COLUMNS}"
        );
        let row: ActionTokenRow = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(ActionTokenId::new())
                .bind(new.kind.as_str())
                .bind(&new.token_hash)
                .bind(normalise_email(&new.email))
                .bind(new.tenant_id)
                .bind(new.role.map(Role::as_str))
                .bind(&new.created_by)
                .bind(Utc::now())
                .bind(new.expires_at)
                .fetch_one(pool)
                .await
        })?;
        row.try_into()
    }

    /// A token that is unused and unexpired, without using it up (to show the landing page).
    pub async fn peek_action_token(
        &self,
        kind: ActionKind,
        token_hash: &str,
    ) -> Result<Option<ActionToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM action_tokens WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3"
        );
        let row: Option<ActionTokenRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(token_hash).bind(kind.as_str()).bind(Utc::now()).fetch_optional(pool).await
        })?;
        row.map(ActionToken::try_from).transpose()
    }

    /// Uses a token up atomically: of two concurrent uses, exactly one gets it.
    pub async fn take_action_token(
        &self,
        kind: ActionKind,
        token_hash: &str,
    ) -> Result<Option<ActionToken>, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "UPDATE action_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3 RETURNING {TOKEN_COLUMNS}"
        );
        let row: Option<ActionTokenRow> = on_write!(self, pool => {
            sqlx::query_as(&sql).bind(token_hash).bind(kind.as_str()).bind(now).fetch_optional(pool).await
        })?;
        row.map(ActionToken::try_from).transpose()
    }

    /// The tenant's invitations that are still open, newest first.
    pub async fn pending_invitations(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ActionToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM action_tokens WHERE tenant_id = $1 AND kind = 'invite' AND used_at IS NULL \
             AND expires_at > $2 ORDER BY created_at DESC"
        );
        let rows: Vec<ActionTokenRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(Utc::now()).fetch_all(pool).await)?;
        rows.into_iter().map(ActionToken::try_from).collect()
    }

    // --- API keys -------------------------------------------------------------------------

    /// Stores a new API key's hash and metadata.
    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        new: &NewApiKey,
    ) -> Result<ApiKey, StoreError> {
        let sql = format!(
            "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {KEY_COLUMNS}"
        );
        let row: ApiKeyRow = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(ApiKeyId::new())
                .bind(tenant)
                .bind(new.name.trim())
                .bind(new.role.as_str())
                .bind(&new.prefix)
                .bind(&new.key_hash)
                .bind(&new.created_by)
                .bind(Utc::now())
                .fetch_one(pool)
                .await
        })?;
        row.try_into()
    }

    /// The live (unrevoked) key with this hash, with its tenant's status.
    pub async fn api_key_by_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<(ApiKey, TenantStatus)>, StoreError> {
        let sql = "SELECT k.id, k.tenant_id, k.name, k.role, k.prefix, k.created_by, k.created_at, k.last_used_at, \
                   k.revoked_at, t.status AS tenant_status \
                   FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1 AND k.revoked_at IS NULL";
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            key: ApiKeyRow,
            tenant_status: String,
        }
        let row: Option<Row> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(key_hash).fetch_optional(pool).await)?;
        row.map(|row| {
            Ok((
                ApiKey::try_from(row.key)?,
                TenantStatus::parse(&row.tenant_status)?,
            ))
        })
        .transpose()
    }

    /// The tenant's keys, revoked ones included, newest first.
    pub async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows: Vec<ApiKeyRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).fetch_all(pool).await)?;
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    /// One of the tenant's keys.
    pub async fn api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
        let row: Option<ApiKeyRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        row.map(ApiKey::try_from).transpose()
    }

    /// Revokes one of the tenant's keys; `NotFound` for another tenant's key.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<ApiKey, StoreError> {
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2 RETURNING {KEY_COLUMNS}"
        );
        let row: Option<ApiKeyRow> = on_write!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(id).bind(Utc::now()).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Records use of a key, at most about once a minute to spare the database.
    pub async fn touch_api_key(&self, id: ApiKeyId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)";
        let stale = now - chrono::Duration::seconds(60);
        on_write!(self, pool => sqlx::query(sql).bind(id).bind(now).bind(stale).execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}
