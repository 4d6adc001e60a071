//! The one SQL implementation of [`Store`], compiled once inside each backend module against
//! that backend's `Db` (`sqlx::Sqlite` or `sqlx::Postgres`).
//!
//! The text is written to mean the same on both engines: `$N` placeholders, `RETURNING`,
//! `ON CONFLICT`, timestamps as integer milliseconds, no engine-specific functions. Case-folded
//! search goes through values the store lower-cases itself, because SQLite's `lower()` and
//! `LIKE` fold ASCII only. The remaining differences are constants of the backend module.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::model::*;
use omnihub_core::*;
use sqlx::Row;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Backend, Db, ENGINE, MIGRATOR};
use crate::codec::{self, ms, now, opt_ts, ts};
use crate::{
    AuditFilter, CallsBy, ChannelPatch, ClientFilter, Credentials, LoginFailure, NewApiToken,
    NewAuditEntry, NewCall, NewChannel, NewInvite, NewUser, Result, Session, Store, StoreError,
};

type DbRow = <Db as sqlx::Database>::Row;
type DbConn = <Db as sqlx::Database>::Connection;

// `WriteTx` (a write transaction, dereferencing to the connection, with `commit` and
// `rollback`) and `Backend::begin_write` come from the backend module: SQLite writes on one
// connection of its own, PostgreSQL on any pooled one.
pub(super) use super::WriteTx;

// Column lists, shared by every query returning the same record.
macro_rules! client_cols {
    () => {
        "id, name, status, blocked_reason, plan, created_at"
    };
}
macro_rules! user_cols {
    () => {
        "id, email, display_name, role, client_id, global_rights, locale, totp_enabled, disabled, \
         created_at"
    };
}
macro_rules! session_cols {
    () => {
        "token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at, ip, user_agent"
    };
}
macro_rules! token_cols {
    () => {
        "id, client_id, user_id, name, prefix, created_at, expires_at, last_used_at, revoked_at"
    };
}
macro_rules! invite_cols {
    () => {
        "id, client_id, email, global_rights, group_ids, channel_grants, created_by, created_at, \
         expires_at, accepted_at"
    };
}
macro_rules! group_cols {
    () => {
        "id, client_id, name, created_at"
    };
}
macro_rules! channel_cols {
    () => {
        "id, client_id, kind, provider, name, settings, credentials IS NOT NULL AS has_credentials, \
         created_at"
    };
}
macro_rules! audit_cols {
    () => {
        "id, client_id, actor_id, action, target_kind, target_id, details, ip, created_at"
    };
}
/// Which clients a `ClientFilter` selects: `$1` a contains-pattern or NULL, `$2` a status or NULL.
macro_rules! client_filter {
    () => {
        " FROM clients WHERE ($1 IS NULL OR name_folded LIKE $1 ESCAPE '\\' OR EXISTS (\
            SELECT 1 FROM users WHERE users.client_id = clients.id \
            AND users.role = 'client_owner' AND users.email LIKE $1 ESCAPE '\\')) \
          AND ($2 IS NULL OR status = $2)"
    };
}

/// Maps constraint violations to the store's errors: a taken unique value is `Conflict(field)`;
/// a reference to a row that does not exist, or not in this client, is `NotFound`.
pub(super) fn constraint(field: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(field),
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound,
        _ => StoreError::Database(e),
    }
}

pub(super) fn found<T>(row: Option<T>) -> Result<T> {
    row.ok_or(StoreError::NotFound)
}

pub(super) fn affected(rows: u64) -> Result<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

// --- rows to records ----------------------------------------------------------------------

fn client_row(r: &DbRow) -> Result<Client> {
    Ok(Client {
        id: ClientId(r.try_get("id")?),
        name: r.try_get("name")?,
        status: codec::client_status(r.try_get::<&str, _>("status")?)?,
        blocked_reason: r.try_get("blocked_reason")?,
        plan: r.try_get("plan")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

fn user_row(r: &DbRow) -> Result<User> {
    Ok(User {
        id: UserId(r.try_get("id")?),
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        role: codec::role(r.try_get::<&str, _>("role")?)?,
        client_id: r.try_get::<Option<Uuid>, _>("client_id")?.map(ClientId),
        global_rights: GlobalRights::from_bits_truncate(codec::rights_from(
            r.try_get("global_rights")?,
        )),
        locale: r.try_get("locale")?,
        totp_enabled: r.try_get("totp_enabled")?,
        disabled: r.try_get("disabled")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

fn session_row(r: &DbRow) -> Result<Session> {
    Ok(Session {
        token_hash: r.try_get("token_hash")?,
        user_id: UserId(r.try_get("user_id")?),
        csrf_token: r.try_get("csrf_token")?,
        created_at: ts(r.try_get("created_at")?)?,
        expires_at: ts(r.try_get("expires_at")?)?,
        last_seen_at: ts(r.try_get("last_seen_at")?)?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
    })
}

fn token_row(r: &DbRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: ApiTokenId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        user_id: UserId(r.try_get("user_id")?),
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        created_at: ts(r.try_get("created_at")?)?,
        expires_at: opt_ts(r.try_get("expires_at")?)?,
        last_used_at: opt_ts(r.try_get("last_used_at")?)?,
        revoked_at: opt_ts(r.try_get("revoked_at")?)?,
    })
}

fn invite_row(r: &DbRow) -> Result<Invite> {
    let Json(group_ids) = r.try_get::<Json<Vec<GroupId>>, _>("group_ids")?;
    let Json(channel_grants) = r.try_get::<Json<Vec<ChannelGrant>>, _>("channel_grants")?;
    Ok(Invite {
        id: InviteId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        email: r.try_get("email")?,
        global_rights: GlobalRights::from_bits_truncate(codec::rights_from(
            r.try_get("global_rights")?,
        )),
        group_ids,
        channel_grants,
        created_by: UserId(r.try_get("created_by")?),
        created_at: ts(r.try_get("created_at")?)?,
        expires_at: ts(r.try_get("expires_at")?)?,
        accepted_at: opt_ts(r.try_get("accepted_at")?)?,
    })
}

pub(super) fn group_row(r: &DbRow, member_ids: Vec<UserId>) -> Result<Group> {
    Ok(Group {
        id: GroupId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        name: r.try_get("name")?,
        member_ids,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

pub(super) fn channel_row(r: &DbRow) -> Result<Channel> {
    Ok(Channel {
        id: ChannelId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        kind: codec::channel_kind(r.try_get::<&str, _>("kind")?)?,
        provider: codec::provider(r.try_get::<&str, _>("provider")?)?,
        name: r.try_get("name")?,
        settings: r.try_get::<Json<serde_json::Value>, _>("settings")?.0,
        has_credentials: r.try_get("has_credentials")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

macro_rules! call_cols {
    () => {
        "id, client_id, channel_id, conversation_id, number, visitor, ip, requested_by, \
         provider_call_id, outcome, duration_secs, failure_reason, created_at, ended_at"
    };
}

fn call_row(r: &DbRow) -> Result<Call> {
    Ok(Call {
        id: CallId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        channel_id: ChannelId(r.try_get("channel_id")?),
        conversation_id: ConversationId(r.try_get("conversation_id")?),
        number: r.try_get("number")?,
        visitor: r.try_get("visitor")?,
        ip: r.try_get("ip")?,
        requested_by: r.try_get::<Option<Uuid>, _>("requested_by")?.map(UserId),
        provider_call_id: r.try_get("provider_call_id")?,
        outcome: match r.try_get::<Option<String>, _>("outcome")? {
            None => None,
            Some(o) => Some(
                CallOutcomeKind::parse(&o)
                    .ok_or_else(|| StoreError::Corrupt(format!("call outcome `{o}`")))?,
            ),
        },
        duration_secs: r.try_get("duration_secs")?,
        failure_reason: r.try_get("failure_reason")?,
        created_at: ts(r.try_get("created_at")?)?,
        ended_at: opt_ts(r.try_get("ended_at")?)?,
    })
}

fn audit_row(r: &DbRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: AuditEntryId(r.try_get("id")?),
        client_id: r.try_get::<Option<Uuid>, _>("client_id")?.map(ClientId),
        actor_id: r.try_get::<Option<Uuid>, _>("actor_id")?.map(UserId),
        action: r.try_get("action")?,
        target_kind: r.try_get("target_kind")?,
        target_id: r.try_get("target_id")?,
        details: r.try_get::<Json<serde_json::Value>, _>("details")?.0,
        ip: r.try_get("ip")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

// --- checks and loads shared by several calls ---------------------------------------------

pub(super) async fn user_in_client(
    conn: &mut DbConn,
    client: ClientId,
    user: UserId,
) -> Result<()> {
    let row = sqlx::query::<Db>("SELECT id FROM users WHERE id = $1 AND client_id = $2")
        .bind(user.0)
        .bind(client.0)
        .fetch_optional(&mut *conn)
        .await?;
    found(row).map(drop)
}

pub(super) async fn group_in_client(
    conn: &mut DbConn,
    client: ClientId,
    group: GroupId,
) -> Result<()> {
    let row = sqlx::query::<Db>("SELECT id FROM groups WHERE id = $1 AND client_id = $2")
        .bind(group.0)
        .bind(client.0)
        .fetch_optional(&mut *conn)
        .await?;
    found(row).map(drop)
}

pub(super) async fn channel_in_client(
    conn: &mut DbConn,
    client: ClientId,
    channel: ChannelId,
) -> Result<()> {
    let row = sqlx::query::<Db>("SELECT id FROM channels WHERE id = $1 AND client_id = $2")
        .bind(channel.0)
        .bind(client.0)
        .fetch_optional(&mut *conn)
        .await?;
    found(row).map(drop)
}

async fn load_group(conn: &mut DbConn, client: ClientId, id: GroupId) -> Result<Group> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        group_cols!(),
        " FROM groups WHERE id = $1 AND client_id = $2"
    ))
    .bind(id.0)
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    let row = found(row)?;
    let members = sqlx::query_scalar::<Db, Uuid>(
        "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    group_row(&row, members.into_iter().map(UserId).collect())
}

async fn insert_user(conn: &mut DbConn, user: &NewUser) -> Result<User> {
    let u = User {
        id: UserId::new(),
        email: codec::fold_email(&user.email),
        display_name: user.display_name.clone(),
        role: user.role,
        client_id: user.client_id,
        global_rights: user.global_rights,
        locale: user.locale.clone(),
        totp_enabled: false,
        disabled: false,
        created_at: now(),
    };
    sqlx::query::<Db>(
        "INSERT INTO users (id, email, display_name, password_hash, role, client_id, \
         global_rights, locale, totp_enabled, disabled, failed_logins, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 0, $10)",
    )
    .bind(u.id.0)
    .bind(&u.email)
    .bind(&u.display_name)
    .bind(&user.password_hash)
    .bind(u.role.as_str())
    .bind(u.client_id.map(|c| c.0))
    .bind(i64::from(u.global_rights.bits()))
    .bind(&u.locale)
    .bind(false)
    .bind(ms(u.created_at))
    .execute(&mut *conn)
    .await
    .map_err(constraint("email"))?;
    Ok(u)
}

impl Backend {
    fn open_secret(&self, sealed: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        sealed.map(|s| self.secrets.open(&s)).transpose()
    }

    /// JSON `null` counts as "no credentials", so a patch can clear them.
    pub(super) fn seal_json(&self, value: Option<&serde_json::Value>) -> Result<Option<Vec<u8>>> {
        match value {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => {
                let plain = serde_json::to_vec(v)
                    .map_err(|e| StoreError::Crypto(format!("credentials: {e}")))?;
                self.secrets.seal(&plain).map(Some)
            }
        }
    }

    fn credentials_row(&self, r: &DbRow) -> Result<Credentials> {
        Ok(Credentials {
            user: user_row(r)?,
            password_hash: r.try_get("password_hash")?,
            totp_secret: self.open_secret(r.try_get("totp_secret")?)?,
            failed_logins: r.try_get("failed_logins")?,
            locked_until: opt_ts(r.try_get("locked_until")?)?,
        })
    }
}

#[async_trait]
impl Store for Backend {
    fn engine(&self) -> &'static str {
        ENGINE
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query::<Db>("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // --- clients -------------------------------------------------------------------------

    async fn create_client(&self, name: &str, plan: Option<&str>) -> Result<Client> {
        let c = Client {
            id: ClientId::new(),
            name: name.to_string(),
            status: ClientStatus::Active,
            blocked_reason: None,
            plan: plan.map(str::to_string),
            created_at: now(),
        };
        sqlx::query::<Db>(
            "INSERT INTO clients (id, name, name_folded, status, plan, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.id.0)
        .bind(&c.name)
        .bind(c.name.to_lowercase())
        .bind(codec::client_status_str(c.status))
        .bind(&c.plan)
        .bind(ms(c.created_at))
        .execute(&self.pool)
        .await?;
        Ok(c)
    }

    async fn get_client(&self, id: ClientId) -> Result<Client> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            client_cols!(),
            " FROM clients WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        client_row(&found(row)?)
    }

    async fn list_clients(&self, filter: &ClientFilter) -> Result<(Vec<Client>, u64)> {
        let pattern = filter.query.as_deref().map(codec::contains_pattern);
        let status = filter.status.map(codec::client_status_str);
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            client_cols!(),
            client_filter!(),
            " ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(&pattern)
        .bind(status)
        .bind(codec::page_limit(filter.limit))
        .bind(i64::from(filter.offset))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar::<Db, i64>(concat!("SELECT COUNT(*)", client_filter!()))
                .bind(&pattern)
                .bind(status)
                .fetch_one(&self.pool)
                .await?;
        let clients = rows.iter().map(client_row).collect::<Result<Vec<_>>>()?;
        Ok((clients, u64::try_from(total).unwrap_or(0)))
    }

    async fn set_client_status(
        &self,
        id: ClientId,
        status: ClientStatus,
        reason: Option<&str>,
    ) -> Result<Client> {
        // A reason only means something while the client is blocked.
        let reason = if status == ClientStatus::Blocked {
            reason
        } else {
            None
        };
        let row = sqlx::query::<Db>(concat!(
            "UPDATE clients SET status = $2, blocked_reason = $3 WHERE id = $1 RETURNING ",
            client_cols!()
        ))
        .bind(id.0)
        .bind(codec::client_status_str(status))
        .bind(reason)
        .fetch_optional(&self.pool)
        .await?;
        client_row(&found(row)?)
    }

    // --- users ---------------------------------------------------------------------------

    async fn create_user(&self, user: &NewUser) -> Result<User> {
        let mut conn = self.pool.acquire().await?;
        insert_user(&mut conn, user).await
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        user_row(&found(row)?)
    }

    async fn get_client_user(&self, client: ClientId, id: UserId) -> Result<User> {
        // `$2` before `$1` on purpose: both engines bind by number, not by position.
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE client_id = $2 AND id = $1"
        ))
        .bind(id.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        user_row(&found(row)?)
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Credentials> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            user_cols!(),
            ", password_hash, totp_secret, failed_logins, locked_until FROM users WHERE email = $1"
        ))
        .bind(codec::fold_email(email))
        .fetch_optional(&self.pool)
        .await?;
        self.credentials_row(&found(row)?)
    }

    async fn credentials(&self, id: UserId) -> Result<Credentials> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            user_cols!(),
            ", password_hash, totp_secret, failed_logins, locked_until FROM users WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        self.credentials_row(&found(row)?)
    }

    async fn list_client_users(&self, client: ClientId) -> Result<Vec<User>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE client_id = $1 ORDER BY created_at, id"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_row).collect()
    }

    async fn list_staff(&self, role: Role) -> Result<Vec<User>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE role = $1 AND client_id IS NULL ORDER BY created_at, id"
        ))
        .bind(role.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_row).collect()
    }

    async fn update_user_profile(
        &self,
        id: UserId,
        display_name: Option<&str>,
        locale: Option<&str>,
    ) -> Result<User> {
        let row = sqlx::query::<Db>(concat!(
            "UPDATE users SET display_name = COALESCE($2, display_name), \
             locale = COALESCE($3, locale) WHERE id = $1 RETURNING ",
            user_cols!()
        ))
        .bind(id.0)
        .bind(display_name)
        .bind(locale)
        .fetch_optional(&self.pool)
        .await?;
        user_row(&found(row)?)
    }

    async fn set_user_rights(
        &self,
        client: ClientId,
        id: UserId,
        role: Role,
        rights: GlobalRights,
    ) -> Result<User> {
        let row = sqlx::query::<Db>(concat!(
            "UPDATE users SET role = $3, global_rights = $4 WHERE id = $1 AND client_id = $2 \
             RETURNING ",
            user_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(role.as_str())
        .bind(i64::from(rights.bits()))
        .fetch_optional(&self.pool)
        .await?;
        user_row(&found(row)?)
    }

    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> Result<User> {
        let row = sqlx::query::<Db>(concat!(
            "UPDATE users SET disabled = $2 WHERE id = $1 RETURNING ",
            user_cols!()
        ))
        .bind(id.0)
        .bind(disabled)
        .fetch_optional(&self.pool)
        .await?;
        user_row(&found(row)?)
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<()> {
        let done = sqlx::query::<Db>("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id.0)
            .bind(hash)
            .execute(&self.pool)
            .await?;
        affected(done.rows_affected())
    }

    async fn set_totp(&self, id: UserId, secret: Option<&[u8]>, enabled: bool) -> Result<()> {
        let sealed = secret.map(|s| self.secrets.seal(s)).transpose()?;
        // A second factor without a secret cannot be enforced.
        let enabled = enabled && sealed.is_some();
        let done =
            sqlx::query::<Db>("UPDATE users SET totp_secret = $2, totp_enabled = $3 WHERE id = $1")
                .bind(id.0)
                .bind(sealed)
                .bind(enabled)
                .execute(&self.pool)
                .await?;
        affected(done.rows_affected())
    }

    async fn record_login_failure(
        &self,
        id: UserId,
        now: DateTime<Utc>,
        lock_after: i64,
        lock_for: chrono::Duration,
    ) -> Result<LoginFailure> {
        // A non-positive threshold means "never lock".
        let threshold = if lock_after > 0 { lock_after } else { i64::MAX };
        let until = now
            .checked_add_signed(lock_for)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // One statement, so concurrent failures are all counted.
        let row = sqlx::query::<Db>(
            "UPDATE users SET failed_logins = failed_logins + 1, \
             locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END \
             WHERE id = $1 RETURNING failed_logins, locked_until",
        )
        .bind(id.0)
        .bind(threshold)
        .bind(ms(until))
        .fetch_optional(&self.pool)
        .await?;
        let row = found(row)?;
        Ok(LoginFailure {
            failed_logins: row.try_get("failed_logins")?,
            locked_until: opt_ts(row.try_get("locked_until")?)?,
        })
    }

    async fn reset_login_failures(&self, id: UserId) -> Result<()> {
        let done = sqlx::query::<Db>(
            "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1",
        )
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        affected(done.rows_affected())
    }

    // --- sessions ------------------------------------------------------------------------

    async fn create_session(&self, s: &Session) -> Result<()> {
        sqlx::query::<Db>(concat!(
            "INSERT INTO sessions (",
            session_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&s.token_hash)
        .bind(s.user_id.0)
        .bind(&s.csrf_token)
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .bind(ms(s.last_seen_at))
        .bind(&s.ip)
        .bind(&s.user_agent)
        .execute(&self.pool)
        .await
        .map_err(constraint("session"))?;
        Ok(())
    }

    async fn touch_session(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Session> {
        let row = sqlx::query::<Db>(concat!(
            "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND expires_at > $2 \
             RETURNING ",
            session_cols!()
        ))
        .bind(token_hash)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        session_row(&found(row)?)
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        // Signing out twice is not an error.
        sqlx::query::<Db>("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_user_sessions(&self, id: UserId) -> Result<u64> {
        let done = sqlx::query::<Db>("DELETE FROM sessions WHERE user_id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Removes expired sessions and expired password-reset tokens; returns how many rows went.
    async fn delete_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        let sessions = sqlx::query::<Db>("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        let resets = sqlx::query::<Db>("DELETE FROM password_resets WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(sessions.rows_affected() + resets.rows_affected())
    }

    // --- API tokens ----------------------------------------------------------------------

    async fn create_api_token(&self, t: &NewApiToken) -> Result<ApiToken> {
        let token = ApiToken {
            id: ApiTokenId::new(),
            client_id: t.client_id,
            user_id: t.user_id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created_at: now(),
            expires_at: t.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        // The (user_id, client_id) key refuses a user of another client: NotFound.
        sqlx::query::<Db>(
            "INSERT INTO api_tokens (id, client_id, user_id, name, prefix, token_hash, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token.id.0)
        .bind(token.client_id.0)
        .bind(token.user_id.0)
        .bind(&token.name)
        .bind(&token.prefix)
        .bind(&t.token_hash)
        .bind(ms(token.created_at))
        .bind(token.expires_at.map(ms))
        .execute(&self.pool)
        .await
        .map_err(constraint("token"))?;
        Ok(token)
    }

    async fn list_api_tokens(&self, client: ClientId) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            token_cols!(),
            " FROM api_tokens WHERE client_id = $1 ORDER BY created_at, id"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_api_token(
        &self,
        client: ClientId,
        id: ApiTokenId,
        now: DateTime<Utc>,
    ) -> Result<ApiToken> {
        // Revoking twice keeps the first revocation time.
        let row = sqlx::query::<Db>(concat!(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE id = $1 AND client_id = $2 RETURNING ",
            token_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        token_row(&found(row)?)
    }

    async fn use_api_token(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<ApiToken> {
        let row = sqlx::query::<Db>(concat!(
            "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) RETURNING ",
            token_cols!()
        ))
        .bind(token_hash)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        token_row(&found(row)?)
    }

    // --- invites -------------------------------------------------------------------------

    async fn create_invite(&self, inv: &NewInvite) -> Result<Invite> {
        let mut conn = self.pool.acquire().await?;
        for group in &inv.group_ids {
            group_in_client(&mut conn, inv.client_id, *group).await?;
        }
        for grant in &inv.channel_grants {
            channel_in_client(&mut conn, inv.client_id, grant.channel_id).await?;
        }
        let invite = Invite {
            id: InviteId::new(),
            client_id: inv.client_id,
            email: codec::fold_email(&inv.email),
            global_rights: inv.global_rights,
            group_ids: inv.group_ids.clone(),
            channel_grants: inv.channel_grants.clone(),
            created_by: inv.created_by,
            created_at: now(),
            expires_at: inv.expires_at,
            accepted_at: None,
        };
        sqlx::query::<Db>(
            "INSERT INTO invites (id, client_id, email, token_hash, global_rights, group_ids, \
             channel_grants, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(invite.id.0)
        .bind(invite.client_id.0)
        .bind(&invite.email)
        .bind(&inv.token_hash)
        .bind(i64::from(invite.global_rights.bits()))
        .bind(Json(&invite.group_ids))
        .bind(Json(&invite.channel_grants))
        .bind(invite.created_by.0)
        .bind(ms(invite.created_at))
        .bind(ms(invite.expires_at))
        .execute(&mut *conn)
        .await
        .map_err(constraint("token"))?;
        Ok(invite)
    }

    async fn list_invites(&self, client: ClientId) -> Result<Vec<Invite>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            invite_cols!(),
            " FROM invites WHERE client_id = $1 ORDER BY created_at, id"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invite_row).collect()
    }

    async fn pending_invite(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Invite> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            invite_cols!(),
            " FROM invites WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2"
        ))
        .bind(token_hash)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        invite_row(&found(row)?)
    }

    async fn delete_invite(&self, client: ClientId, id: InviteId) -> Result<()> {
        let done = sqlx::query::<Db>("DELETE FROM invites WHERE id = $1 AND client_id = $2")
            .bind(id.0)
            .bind(client.0)
            .execute(&self.pool)
            .await?;
        affected(done.rows_affected())
    }

    async fn accept_invite(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
        display_name: &str,
        password_hash: &str,
        locale: &str,
    ) -> Result<User> {
        let mut tx = self.begin_write().await?;
        // Claiming the invite first locks its row: a concurrent accept waits, then finds it
        // no longer pending.
        let row = sqlx::query::<Db>(concat!(
            "UPDATE invites SET accepted_at = $2 \
             WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 RETURNING ",
            invite_cols!()
        ))
        .bind(token_hash)
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let invite = invite_row(&found(row)?)?;
        let user = insert_user(
            &mut tx,
            &NewUser {
                email: invite.email.clone(),
                display_name: display_name.to_string(),
                password_hash: password_hash.to_string(),
                role: Role::Employee,
                client_id: Some(invite.client_id),
                global_rights: invite.global_rights,
                locale: locale.to_string(),
            },
        )
        .await?;
        // Groups and channels deleted since the invite was made are skipped.
        for group in &invite.group_ids {
            sqlx::query::<Db>(
                "INSERT INTO group_members (group_id, user_id, client_id) \
                 SELECT id, $2, client_id FROM groups WHERE id = $1 AND client_id = $3 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(group.0)
            .bind(user.id.0)
            .bind(invite.client_id.0)
            .execute(&mut *tx)
            .await?;
        }
        for grant in &invite.channel_grants {
            sqlx::query::<Db>(
                "INSERT INTO channel_grants (user_id, channel_id, client_id, rights) \
                 SELECT $1, id, client_id, $4 FROM channels WHERE id = $2 AND client_id = $3 \
                 ON CONFLICT (user_id, channel_id) DO UPDATE SET rights = excluded.rights",
            )
            .bind(user.id.0)
            .bind(grant.channel_id.0)
            .bind(invite.client_id.0)
            .bind(i64::from(grant.rights.bits()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    // --- password reset ------------------------------------------------------------------

    async fn create_password_reset(
        &self,
        id: UserId,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query::<Db>(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) \
             SELECT $2, id, $3, $4 FROM users WHERE id = $1",
        )
        .bind(id.0)
        .bind(token_hash)
        .bind(ms(now()))
        .bind(ms(expires_at))
        .execute(&self.pool)
        .await
        .map_err(constraint("token"))?;
        affected(done.rows_affected())
    }

    async fn consume_password_reset(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
        new_hash: &str,
    ) -> Result<UserId> {
        let mut tx = self.begin_write().await?;
        let user = sqlx::query_scalar::<Db, Uuid>(
            "DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > $2 \
             RETURNING user_id",
        )
        .bind(token_hash)
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let user = UserId(found(user)?);
        sqlx::query::<Db>("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user.0)
            .bind(new_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query::<Db>("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query::<Db>("DELETE FROM password_resets WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    // --- groups --------------------------------------------------------------------------

    async fn create_group(&self, client: ClientId, name: &str) -> Result<Group> {
        let g = Group {
            id: GroupId::new(),
            client_id: client,
            name: name.to_string(),
            member_ids: Vec::new(),
            created_at: now(),
        };
        sqlx::query::<Db>(
            "INSERT INTO groups (id, client_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(g.id.0)
        .bind(g.client_id.0)
        .bind(&g.name)
        .bind(ms(g.created_at))
        .execute(&self.pool)
        .await
        .map_err(constraint("name"))?;
        Ok(g)
    }

    async fn list_groups(&self, client: ClientId) -> Result<Vec<Group>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            group_cols!(),
            " FROM groups WHERE client_id = $1 ORDER BY created_at, id"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        let pairs = sqlx::query::<Db>(
            "SELECT group_id, user_id FROM group_members WHERE client_id = $1 ORDER BY user_id",
        )
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        let mut members: HashMap<Uuid, Vec<UserId>> = HashMap::new();
        for p in &pairs {
            members
                .entry(p.try_get("group_id")?)
                .or_default()
                .push(UserId(p.try_get("user_id")?));
        }
        rows.iter()
            .map(|r| {
                let id: Uuid = r.try_get("id")?;
                group_row(r, members.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    async fn get_group(&self, client: ClientId, id: GroupId) -> Result<Group> {
        let mut conn = self.pool.acquire().await?;
        load_group(&mut conn, client, id).await
    }

    async fn rename_group(&self, client: ClientId, id: GroupId, name: &str) -> Result<Group> {
        let mut conn = self.pool.acquire().await?;
        let done =
            sqlx::query::<Db>("UPDATE groups SET name = $3 WHERE id = $1 AND client_id = $2")
                .bind(id.0)
                .bind(client.0)
                .bind(name)
                .execute(&mut *conn)
                .await
                .map_err(constraint("name"))?;
        affected(done.rows_affected())?;
        load_group(&mut conn, client, id).await
    }

    async fn delete_group(&self, client: ClientId, id: GroupId) -> Result<()> {
        let done = sqlx::query::<Db>("DELETE FROM groups WHERE id = $1 AND client_id = $2")
            .bind(id.0)
            .bind(client.0)
            .execute(&self.pool)
            .await?;
        affected(done.rows_affected())
    }

    async fn set_group_members(
        &self,
        client: ClientId,
        id: GroupId,
        members: &[UserId],
    ) -> Result<Group> {
        let mut tx = self.begin_write().await?;
        group_in_client(&mut tx, client, id).await?;
        for user in members {
            user_in_client(&mut tx, client, *user).await?;
        }
        // Members who stay keep their row, and with it their competency in this group.
        let current =
            sqlx::query_scalar::<Db, Uuid>("SELECT user_id FROM group_members WHERE group_id = $1")
                .bind(id.0)
                .fetch_all(&mut *tx)
                .await?;
        for gone in current
            .iter()
            .filter(|u| !members.iter().any(|m| m.0 == **u))
        {
            sqlx::query::<Db>("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
                .bind(id.0)
                .bind(gone)
                .execute(&mut *tx)
                .await?;
        }
        for user in members {
            sqlx::query::<Db>(
                "INSERT INTO group_members (group_id, user_id, client_id) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.0)
            .bind(user.0)
            .bind(client.0)
            .execute(&mut *tx)
            .await
            .map_err(constraint("member"))?;
        }
        let group = load_group(&mut tx, client, id).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn user_groups(&self, client: ClientId, user: UserId) -> Result<Vec<GroupId>> {
        let mut conn = self.pool.acquire().await?;
        user_in_client(&mut conn, client, user).await?;
        let ids = sqlx::query_scalar::<Db, Uuid>(
            "SELECT group_id FROM group_members WHERE user_id = $1 AND client_id = $2 \
             ORDER BY group_id",
        )
        .bind(user.0)
        .bind(client.0)
        .fetch_all(&mut *conn)
        .await?;
        Ok(ids.into_iter().map(GroupId).collect())
    }

    // --- channels and per-channel grants -------------------------------------------------

    async fn create_channel(&self, ch: &NewChannel) -> Result<Channel> {
        let sealed = self.seal_json(ch.credentials.as_ref())?;
        let channel = Channel {
            id: ChannelId::new(),
            client_id: ch.client_id,
            kind: ch.kind,
            provider: ch.provider,
            name: ch.name.clone(),
            settings: ch.settings.clone(),
            has_credentials: sealed.is_some(),
            created_at: now(),
        };
        sqlx::query::<Db>(
            "INSERT INTO channels (id, client_id, kind, provider, name, settings, credentials, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(channel.id.0)
        .bind(channel.client_id.0)
        .bind(channel.kind.as_str())
        .bind(channel.provider.as_str())
        .bind(&channel.name)
        .bind(Json(&channel.settings))
        .bind(sealed)
        .bind(ms(channel.created_at))
        .execute(&self.pool)
        .await
        .map_err(constraint("channel"))?;
        Ok(channel)
    }

    async fn list_channels(&self, client: ClientId) -> Result<Vec<Channel>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            channel_cols!(),
            " FROM channels WHERE client_id = $1 ORDER BY created_at, id"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_row).collect()
    }

    async fn get_channel(&self, client: ClientId, id: ChannelId) -> Result<Channel> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            channel_cols!(),
            " FROM channels WHERE id = $1 AND client_id = $2"
        ))
        .bind(id.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        channel_row(&found(row)?)
    }

    async fn update_channel(
        &self,
        client: ClientId,
        id: ChannelId,
        patch: &ChannelPatch,
    ) -> Result<Channel> {
        let sealed = self.seal_json(patch.credentials.as_ref())?;
        let row = sqlx::query::<Db>(concat!(
            "UPDATE channels SET name = COALESCE($3, name), settings = COALESCE($4, settings), \
             credentials = CASE WHEN $5 THEN $6 ELSE credentials END \
             WHERE id = $1 AND client_id = $2 RETURNING ",
            channel_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(patch.name.as_deref())
        .bind(patch.settings.as_ref().map(Json))
        .bind(patch.credentials.is_some())
        .bind(sealed)
        .fetch_optional(&self.pool)
        .await?;
        channel_row(&found(row)?)
    }

    async fn delete_channel(&self, client: ClientId, id: ChannelId) -> Result<()> {
        let done = sqlx::query::<Db>("DELETE FROM channels WHERE id = $1 AND client_id = $2")
            .bind(id.0)
            .bind(client.0)
            .execute(&self.pool)
            .await?;
        affected(done.rows_affected())
    }

    async fn channel_credentials(
        &self,
        client: ClientId,
        id: ChannelId,
    ) -> Result<Option<serde_json::Value>> {
        let sealed = sqlx::query_scalar::<Db, Option<Vec<u8>>>(
            "SELECT credentials FROM channels WHERE id = $1 AND client_id = $2",
        )
        .bind(id.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        match self.open_secret(found(sealed)?)? {
            None => Ok(None),
            Some(plain) => serde_json::from_slice(&plain)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("channel credentials: {e}"))),
        }
    }

    async fn channels_of_providers(&self, providers: &[Provider]) -> Result<Vec<Channel>> {
        let mut all = Vec::new();
        for provider in providers {
            let rows = sqlx::query::<Db>(concat!(
                "SELECT ",
                channel_cols!(),
                " FROM channels WHERE provider = $1 ORDER BY id"
            ))
            .bind(provider.as_str())
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                all.push(channel_row(&row)?);
            }
        }
        Ok(all)
    }

    async fn poll_cursor(&self, client: ClientId, channel: ChannelId) -> Result<Option<String>> {
        Ok(sqlx::query_scalar::<Db, String>(
            "SELECT cursor FROM poll_cursors WHERE channel_id = $1 AND client_id = $2",
        )
        .bind(channel.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn set_poll_cursor(
        &self,
        client: ClientId,
        channel: ChannelId,
        cursor: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // The channel must be the client's: another client's id is simply not found.
        let exists = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM channels WHERE id = $1 AND client_id = $2",
        )
        .bind(channel.0)
        .bind(client.0)
        .fetch_one(&mut *tx)
        .await?;
        if exists == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query::<Db>(
            "INSERT INTO poll_cursors (channel_id, client_id, cursor, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (channel_id) DO UPDATE SET cursor = excluded.cursor, \
             updated_at = excluded.updated_at",
        )
        .bind(channel.0)
        .bind(client.0)
        .bind(cursor)
        .bind(ms(now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_poll_lease(
        &self,
        channel: ChannelId,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // One conditional upsert: a new lease for an existing channel, or the row taken over
        // only while its holder is this node or its time ran out. PostgreSQL locks the
        // conflicting row and evaluates the condition on its newest version, so of two nodes
        // claiming at once one is granted; SQLite's single writer serializes them.
        let granted = sqlx::query_scalar::<Db, String>(
            "INSERT INTO poll_leases (channel_id, holder, held_until) \
             SELECT id, $2, $4 FROM channels WHERE id = $1 \
             ON CONFLICT (channel_id) DO UPDATE SET holder = excluded.holder, \
             held_until = excluded.held_until \
             WHERE poll_leases.holder = excluded.holder OR poll_leases.held_until <= $3 \
             RETURNING holder",
        )
        .bind(channel.0)
        .bind(node)
        .bind(ms(now))
        .bind(ms(until))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(granted.is_some())
    }

    async fn release_poll_lease(&self, channel: ChannelId, node: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<Db>("DELETE FROM poll_leases WHERE channel_id = $1 AND holder = $2")
            .bind(channel.0)
            .bind(node)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn poll_lease(&self, channel: ChannelId) -> Result<Option<(String, DateTime<Utc>)>> {
        let row =
            sqlx::query::<Db>("SELECT holder, held_until FROM poll_leases WHERE channel_id = $1")
                .bind(channel.0)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| Ok((row.try_get("holder")?, ts(row.try_get("held_until")?)?)))
            .transpose()
    }

    async fn channel_for_hook(
        &self,
        id: ChannelId,
    ) -> Result<(Channel, Option<serde_json::Value>)> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            channel_cols!(),
            ", credentials FROM channels WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let row = found(row)?;
        let channel = channel_row(&row)?;
        let sealed: Option<Vec<u8>> = row.try_get("credentials")?;
        let credentials = match self.open_secret(sealed)? {
            None => None,
            Some(plain) => Some(
                serde_json::from_slice(&plain)
                    .map_err(|e| StoreError::Corrupt(format!("channel credentials: {e}")))?,
            ),
        };
        Ok((channel, credentials))
    }

    async fn set_channel_grants(
        &self,
        client: ClientId,
        user: UserId,
        grants: &[ChannelGrant],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        user_in_client(&mut tx, client, user).await?;
        for grant in grants {
            channel_in_client(&mut tx, client, grant.channel_id).await?;
        }
        sqlx::query::<Db>("DELETE FROM channel_grants WHERE user_id = $1 AND client_id = $2")
            .bind(user.0)
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        for grant in grants {
            sqlx::query::<Db>(
                "INSERT INTO channel_grants (user_id, channel_id, client_id, rights) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, channel_id) DO UPDATE SET rights = excluded.rights",
            )
            .bind(user.0)
            .bind(grant.channel_id.0)
            .bind(client.0)
            .bind(i64::from(grant.rights.bits()))
            .execute(&mut *tx)
            .await
            .map_err(constraint("grant"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn channel_grants(&self, client: ClientId, user: UserId) -> Result<Vec<ChannelGrant>> {
        let mut conn = self.pool.acquire().await?;
        user_in_client(&mut conn, client, user).await?;
        let rows = sqlx::query::<Db>(
            "SELECT channel_id, rights FROM channel_grants WHERE user_id = $1 AND client_id = $2 \
             ORDER BY channel_id",
        )
        .bind(user.0)
        .bind(client.0)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChannelGrant {
                    channel_id: ChannelId(r.try_get("channel_id")?),
                    rights: ChannelRights::from_bits_truncate(codec::rights_from(
                        r.try_get("rights")?,
                    )),
                })
            })
            .collect()
    }

    // --- conversations -------------------------------------------------------------------

    async fn get_conversation(&self, client: ClientId, id: ConversationId) -> Result<Conversation> {
        let mut conn = self.pool.acquire().await?;
        super::hub_sql::load_conversation(&mut conn, client, id).await
    }

    // --- click-to-call --------------------------------------------------------------------

    async fn create_call(&self, c: &NewCall) -> Result<Call> {
        let mut tx = self.begin_write().await?;
        // Both must be the client's; the foreign keys say so too, but only as a constraint
        // error, and a conversation of another channel is fine (the widget's, for one).
        let owned = sqlx::query_scalar::<Db, i64>(
            "SELECT (SELECT COUNT(*) FROM channels WHERE id = $1 AND client_id = $3) \
             + (SELECT COUNT(*) FROM conversations WHERE id = $2 AND client_id = $3)",
        )
        .bind(c.channel_id.0)
        .bind(c.conversation_id.0)
        .bind(c.client_id.0)
        .fetch_one(&mut *tx)
        .await?;
        if owned != 2 {
            return Err(StoreError::NotFound);
        }
        let row = sqlx::query::<Db>(concat!(
            "INSERT INTO calls (id, client_id, channel_id, conversation_id, number, visitor, ip, \
             requested_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
            call_cols!()
        ))
        .bind(c.id.0)
        .bind(c.client_id.0)
        .bind(c.channel_id.0)
        .bind(c.conversation_id.0)
        .bind(&c.number)
        .bind(&c.visitor)
        .bind(&c.ip)
        .bind(c.requested_by.map(|u| u.0))
        .bind(ms(now()))
        .fetch_one(&mut *tx)
        .await
        .map_err(constraint("id"))?;
        let call = call_row(&row)?;
        tx.commit().await?;
        Ok(call)
    }

    async fn get_call(&self, client: ClientId, id: CallId) -> Result<Call> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            call_cols!(),
            " FROM calls WHERE id = $1 AND client_id = $2"
        ))
        .bind(id.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        call_row(&found(row)?)
    }

    async fn set_call_provider_id(
        &self,
        client: ClientId,
        id: CallId,
        provider_call_id: &str,
    ) -> Result<Call> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query::<Db>(concat!(
            "UPDATE calls SET provider_call_id = $3 WHERE id = $1 AND client_id = $2 RETURNING ",
            call_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(provider_call_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(constraint("provider_call_id"))?;
        let call = call_row(&found(row)?)?;
        tx.commit().await?;
        Ok(call)
    }

    async fn finish_call(
        &self,
        client: ClientId,
        id: CallId,
        outcome: CallOutcomeKind,
        duration_secs: Option<i64>,
        failure_reason: Option<&str>,
    ) -> Result<Option<Call>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query::<Db>(concat!(
            "UPDATE calls SET outcome = $3, duration_secs = $4, failure_reason = $5, \
             ended_at = $6 WHERE id = $1 AND client_id = $2 AND outcome IS NULL RETURNING ",
            call_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(outcome.as_str())
        .bind(duration_secs)
        .bind(failure_reason)
        .bind(ms(now()))
        .fetch_optional(&mut *tx)
        .await?;
        let finished = match row {
            Some(row) => Some(call_row(&row)?),
            None => {
                // Either it had an outcome already, or it is not the client's call at all.
                let exists = sqlx::query_scalar::<Db, i64>(
                    "SELECT COUNT(*) FROM calls WHERE id = $1 AND client_id = $2",
                )
                .bind(id.0)
                .bind(client.0)
                .fetch_one(&mut *tx)
                .await?;
                if exists == 0 {
                    return Err(StoreError::NotFound);
                }
                None
            }
        };
        tx.commit().await?;
        Ok(finished)
    }

    async fn call_by_provider_id(
        &self,
        channel: ChannelId,
        provider_call_id: &str,
    ) -> Result<Call> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            call_cols!(),
            " FROM calls WHERE channel_id = $1 AND provider_call_id = $2"
        ))
        .bind(channel.0)
        .bind(provider_call_id)
        .fetch_optional(&self.pool)
        .await?;
        call_row(&found(row)?)
    }

    async fn open_call_to(&self, channel: ChannelId, number: &str) -> Result<Call> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            call_cols!(),
            " FROM calls WHERE channel_id = $1 AND number = $2 AND outcome IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(channel.0)
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        call_row(&found(row)?)
    }

    async fn unfinished_calls(
        &self,
        placed_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Call>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            call_cols!(),
            " FROM calls WHERE outcome IS NULL AND created_at < $1 \
             ORDER BY created_at, id LIMIT $2"
        ))
        .bind(ms(placed_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_row).collect()
    }

    async fn count_calls(
        &self,
        client: ClientId,
        by: CallsBy<'_>,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        let (sql, value) = match by {
            CallsBy::Number(n) => (
                "SELECT COUNT(*) FROM calls WHERE client_id = $1 AND number = $2 AND created_at >= $3",
                n,
            ),
            CallsBy::Ip(ip) => (
                "SELECT COUNT(*) FROM calls WHERE client_id = $1 AND ip = $2 AND created_at >= $3",
                ip,
            ),
            CallsBy::Visitor(v) => (
                "SELECT COUNT(*) FROM calls WHERE client_id = $1 AND visitor = $2 AND created_at >= $3",
                v,
            ),
        };
        let count = sqlx::query_scalar::<Db, i64>(sql)
            .bind(client.0)
            .bind(value)
            .bind(ms(since))
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    // --- audit ---------------------------------------------------------------------------

    async fn append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry> {
        let entry = AuditEntry {
            id: AuditEntryId::new(),
            client_id: e.client_id,
            actor_id: e.actor_id,
            action: e.action.clone(),
            target_kind: e.target_kind.clone(),
            target_id: e.target_id.clone(),
            details: e.details.clone(),
            ip: e.ip.clone(),
            created_at: now(),
        };
        sqlx::query::<Db>(concat!(
            "INSERT INTO audit_log (",
            audit_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(entry.id.0)
        .bind(entry.client_id.map(|c| c.0))
        .bind(entry.actor_id.map(|a| a.0))
        .bind(&entry.action)
        .bind(&entry.target_kind)
        .bind(&entry.target_id)
        .bind(Json(&entry.details))
        .bind(&entry.ip)
        .bind(ms(entry.created_at))
        .execute(&self.pool)
        .await
        .map_err(constraint("audit entry"))?;
        Ok(entry)
    }

    async fn list_audit(&self, client: ClientId, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        // A prefix test by length, not LIKE: SQLite's LIKE ignores ASCII case, PostgreSQL's
        // does not.
        let prefix_len = filter
            .action_prefix
            .as_deref()
            .map(|p| i32::try_from(p.chars().count()).unwrap_or(i32::MAX));
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit_log WHERE client_id = $1 AND ($2 IS NULL OR actor_id = $2) \
             AND ($3 IS NULL OR substr(action, 1, $4) = $3) AND ($5 IS NULL OR id < $5) \
             ORDER BY id DESC LIMIT $6"
        ))
        .bind(client.0)
        .bind(filter.actor_id.map(|a| a.0))
        .bind(filter.action_prefix.as_deref())
        .bind(prefix_len)
        .bind(filter.before.map(|b| b.0))
        .bind(codec::page_limit(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_row).collect()
    }
}
