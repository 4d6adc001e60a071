//! The one SQL implementation of [`SocialStore`], compiled once inside each backend module
//! against that backend's `Db`, like `sql.rs` (whose helpers it shares).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::model::*;
use omnihub_core::*;
use sqlx::Row;
use sqlx::types::Json;
use uuid::Uuid;

use super::sql::{affected, constraint, found};
use super::{Backend, Db};
use crate::codec::{ms, now, opt_ts, ts};
use crate::social::*;
use crate::{Result, StoreError};

type DbRow = <Db as sqlx::Database>::Row;

macro_rules! profile_select {
    () => {
        "SELECT p.channel_id, p.client_id, p.network, p.external_id, c.name, p.status, \
         p.status_detail, p.token_expires_at, p.created_at \
         FROM social_profiles p JOIN channels c ON c.id = p.channel_id AND c.client_id = p.client_id "
    };
}

macro_rules! post_cols {
    () => {
        "id, client_id, author_id, status, content, approved_by, scheduled_at, time_zone, \
         created_at, updated_at"
    };
}

macro_rules! media_cols {
    () => {
        "id, client_id, file_name, mime_type, size, storage_key, uploaded_by, created_at"
    };
}

fn media_row(r: &DbRow) -> Result<SocialMedia> {
    let mime_type: String = r.try_get("mime_type")?;
    Ok(SocialMedia {
        id: r.try_get("id")?,
        client_id: ClientId(r.try_get("client_id")?),
        file_name: r.try_get("file_name")?,
        kind: omnihub_core::social::MediaKind::of_mime(&mime_type),
        mime_type,
        size: r.try_get("size")?,
        storage_key: r.try_get("storage_key")?,
        uploaded_by: r.try_get::<Option<Uuid>, _>("uploaded_by")?.map(UserId),
        created_at: ts(r.try_get("created_at")?)?,
    })
}

fn profile_row(r: &DbRow) -> Result<SocialProfile> {
    Ok(SocialProfile {
        id: ChannelId(r.try_get("channel_id")?),
        client_id: ClientId(r.try_get("client_id")?),
        network: r.try_get("network")?,
        external_id: r.try_get("external_id")?,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
        status_detail: r.try_get("status_detail")?,
        token_expires_at: opt_ts(r.try_get("token_expires_at")?)?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

fn post_row(r: &DbRow) -> Result<SocialPost> {
    Ok(SocialPost {
        id: r.try_get("id")?,
        client_id: ClientId(r.try_get("client_id")?),
        author_id: r.try_get::<Option<Uuid>, _>("author_id")?.map(UserId),
        status: r.try_get("status")?,
        content: r.try_get::<Json<serde_json::Value>, _>("content")?.0,
        approved_by: r.try_get::<Option<Uuid>, _>("approved_by")?.map(UserId),
        scheduled_at: opt_ts(r.try_get("scheduled_at")?)?,
        time_zone: r.try_get("time_zone")?,
        created_at: ts(r.try_get("created_at")?)?,
        updated_at: ts(r.try_get("updated_at")?)?,
        targets: Vec::new(),
    })
}

fn target_row(r: &DbRow) -> Result<PostTarget> {
    Ok(PostTarget {
        profile_id: ChannelId(r.try_get("channel_id")?),
        content: r
            .try_get::<Option<Json<serde_json::Value>>, _>("content")?
            .map(|c| c.0),
        status: r.try_get("status")?,
        remote_id: r.try_get("remote_id")?,
        failure_reason: r.try_get("failure_reason")?,
        published_at: opt_ts(r.try_get("published_at")?)?,
        likes: r.try_get("likes")?,
        comments: r.try_get("comments")?,
        reposts: r.try_get("reposts")?,
        views: r.try_get("views")?,
    })
}

impl Backend {
    async fn with_targets<'e, E>(&self, executor: E, mut post: SocialPost) -> Result<SocialPost>
    where
        E: sqlx::Executor<'e, Database = Db>,
    {
        let rows = sqlx::query::<Db>(
            "SELECT channel_id, content, status, remote_id, failure_reason, published_at, likes, \
             comments, reposts, views FROM social_post_targets \
             WHERE post_id = $1 AND client_id = $2 ORDER BY channel_id",
        )
        .bind(post.id)
        .bind(post.client_id.0)
        .fetch_all(executor)
        .await?;
        post.targets = rows.iter().map(target_row).collect::<Result<_>>()?;
        Ok(post)
    }

    async fn load_post(&self, client: ClientId, id: Uuid) -> Result<SocialPost> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            post_cols!(),
            " FROM social_posts WHERE id = $1 AND client_id = $2"
        ))
        .bind(id)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        let post = post_row(&found(row)?)?;
        self.with_targets(&self.pool, post).await
    }
}

#[async_trait]
impl SocialStore for Backend {
    async fn create_social_profile(&self, p: &NewSocialProfile) -> Result<SocialProfile> {
        let sealed = self.seal_json(Some(&p.credentials))?;
        let id = ChannelId::new();
        let at = now();
        let mut tx = self.begin_write().await?;
        sqlx::query::<Db>(
            "INSERT INTO channels (id, client_id, kind, provider, name, settings, credentials, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.0)
        .bind(p.client_id.0)
        .bind(ChannelKind::Social.as_str())
        .bind(p.provider.as_str())
        .bind(&p.name)
        .bind(Json(serde_json::json!({})))
        .bind(sealed)
        .bind(ms(at))
        .execute(&mut *tx)
        .await
        .map_err(constraint("channel"))?;
        sqlx::query::<Db>(
            "INSERT INTO social_profiles (channel_id, client_id, network, external_id, status, \
             status_detail, token_expires_at, created_at) \
             VALUES ($1, $2, $3, $4, 'active', NULL, $5, $6)",
        )
        .bind(id.0)
        .bind(p.client_id.0)
        .bind(&p.network)
        .bind(&p.external_id)
        .bind(p.token_expires_at.map(ms))
        .bind(ms(at))
        .execute(&mut *tx)
        .await
        .map_err(constraint("profile"))?;
        tx.commit().await?;
        self.get_social_profile(p.client_id, id).await
    }

    async fn list_social_profiles(&self, client: ClientId) -> Result<Vec<SocialProfile>> {
        let rows = sqlx::query::<Db>(concat!(
            profile_select!(),
            "WHERE p.client_id = $1 ORDER BY p.created_at, p.channel_id"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(profile_row).collect()
    }

    async fn get_social_profile(&self, client: ClientId, id: ChannelId) -> Result<SocialProfile> {
        let row = sqlx::query::<Db>(concat!(
            profile_select!(),
            "WHERE p.channel_id = $1 AND p.client_id = $2"
        ))
        .bind(id.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        profile_row(&found(row)?)
    }

    async fn social_profile_for_hook(&self, id: ChannelId) -> Result<SocialProfile> {
        let row = sqlx::query::<Db>(concat!(profile_select!(), "WHERE p.channel_id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        profile_row(&found(row)?)
    }

    async fn social_profiles_for_account(
        &self,
        network: &str,
        external_id: &str,
    ) -> Result<Vec<SocialProfile>> {
        let rows = sqlx::query::<Db>(concat!(
            profile_select!(),
            "WHERE p.network = $1 AND p.external_id = $2 ORDER BY p.created_at, p.channel_id"
        ))
        .bind(network)
        .bind(external_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(profile_row).collect()
    }

    async fn set_social_profile_status(
        &self,
        client: ClientId,
        id: ChannelId,
        status: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let done = sqlx::query::<Db>(
            "UPDATE social_profiles SET status = $3, status_detail = $4 \
             WHERE channel_id = $1 AND client_id = $2",
        )
        .bind(id.0)
        .bind(client.0)
        .bind(status)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        affected(done.rows_affected())
    }

    async fn renew_social_profile_token(
        &self,
        client: ClientId,
        id: ChannelId,
        credentials: &serde_json::Value,
        token_expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let sealed = self.seal_json(Some(credentials))?;
        let mut tx = self.begin_write().await?;
        let profile = sqlx::query::<Db>(
            "UPDATE social_profiles SET status = 'active', status_detail = NULL, \
             token_expires_at = $3 WHERE channel_id = $1 AND client_id = $2",
        )
        .bind(id.0)
        .bind(client.0)
        .bind(token_expires_at.map(ms))
        .execute(&mut *tx)
        .await?;
        affected(profile.rows_affected())?;
        sqlx::query::<Db>("UPDATE channels SET credentials = $3 WHERE id = $1 AND client_id = $2")
            .bind(id.0)
            .bind(client.0)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_social_post(&self, p: &NewSocialPost) -> Result<SocialPost> {
        let id = Uuid::now_v7();
        let at = now();
        let mut tx = self.begin_write().await?;
        sqlx::query::<Db>(
            "INSERT INTO social_posts (id, client_id, author_id, status, content, approved_by, \
             scheduled_at, time_zone, created_at, updated_at) \
             VALUES ($1, $2, $3, 'draft', $4, NULL, NULL, NULL, $5, $5)",
        )
        .bind(id)
        .bind(p.client_id.0)
        .bind(p.author_id.map(|u| u.0))
        .bind(Json(&p.content))
        .bind(ms(at))
        .execute(&mut *tx)
        .await?;
        insert_targets(&mut tx, p.client_id, id, &p.targets).await?;
        tx.commit().await?;
        self.load_post(p.client_id, id).await
    }

    async fn get_social_post(&self, client: ClientId, id: Uuid) -> Result<SocialPost> {
        self.load_post(client, id).await
    }

    async fn list_social_posts(&self, client: ClientId) -> Result<Vec<SocialPost>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            post_cols!(),
            " FROM social_posts WHERE client_id = $1 ORDER BY created_at DESC, id DESC LIMIT 500"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        let mut posts = Vec::with_capacity(rows.len());
        for row in &rows {
            posts.push(self.with_targets(&self.pool, post_row(row)?).await?);
        }
        Ok(posts)
    }

    async fn update_social_post(
        &self,
        client: ClientId,
        id: Uuid,
        content: &serde_json::Value,
        targets: &[(ChannelId, Option<serde_json::Value>)],
    ) -> Result<SocialPost> {
        let mut tx = self.begin_write().await?;
        let status = sqlx::query_scalar::<Db, String>(
            "SELECT status FROM social_posts WHERE id = $1 AND client_id = $2",
        )
        .bind(id)
        .bind(client.0)
        .fetch_optional(&mut *tx)
        .await?;
        if found(status)? != "draft" {
            return Err(StoreError::Conflict("status"));
        }
        sqlx::query::<Db>(
            "UPDATE social_posts SET content = $3, updated_at = $4 WHERE id = $1 AND client_id = $2",
        )
        .bind(id)
        .bind(client.0)
        .bind(Json(content))
        .bind(ms(now()))
        .execute(&mut *tx)
        .await?;
        sqlx::query::<Db>("DELETE FROM social_post_targets WHERE post_id = $1 AND client_id = $2")
            .bind(id)
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        insert_targets(&mut tx, client, id, targets).await?;
        tx.commit().await?;
        self.load_post(client, id).await
    }

    async fn transition_social_post(
        &self,
        client: ClientId,
        id: Uuid,
        change: &PostTransition<'_>,
    ) -> Result<SocialPost> {
        let mut tx = self.begin_write().await?;
        let status = sqlx::query_scalar::<Db, String>(
            "SELECT status FROM social_posts WHERE id = $1 AND client_id = $2",
        )
        .bind(id)
        .bind(client.0)
        .fetch_optional(&mut *tx)
        .await?;
        let status = found(status)?;
        if !change.from.contains(&status.as_str()) {
            return Err(StoreError::Conflict("status"));
        }
        let (set_schedule, at, zone) = match &change.scheduled {
            None => (false, None, None),
            Some(None) => (true, None, None),
            Some(Some((at, zone))) => (true, Some(ms(*at)), Some(zone.clone())),
        };
        sqlx::query::<Db>(
            "UPDATE social_posts SET status = $3, updated_at = $4, \
             approved_by = COALESCE($5, approved_by), \
             scheduled_at = CASE WHEN $6 THEN $7 ELSE scheduled_at END, \
             time_zone = CASE WHEN $6 THEN $8 ELSE time_zone END \
             WHERE id = $1 AND client_id = $2",
        )
        .bind(id)
        .bind(client.0)
        .bind(change.to)
        .bind(ms(now()))
        .bind(change.approved_by.map(|u| u.0))
        .bind(set_schedule)
        .bind(at)
        .bind(zone)
        .execute(&mut *tx)
        .await?;
        if change.to == "publishing" {
            // A new round of publishing retries the targets that failed.
            sqlx::query::<Db>(
                "UPDATE social_post_targets SET status = 'pending', failure_reason = NULL \
                 WHERE post_id = $1 AND client_id = $2 AND status = 'failed'",
            )
            .bind(id)
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.load_post(client, id).await
    }

    async fn delete_social_post(&self, client: ClientId, id: Uuid) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let published = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM social_post_targets WHERE post_id = $1 AND client_id = $2 \
             AND remote_id IS NOT NULL AND status <> 'deleted'",
        )
        .bind(id)
        .bind(client.0)
        .fetch_one(&mut *tx)
        .await?;
        if published > 0 {
            return Err(StoreError::Conflict("status"));
        }
        let done = sqlx::query::<Db>("DELETE FROM social_posts WHERE id = $1 AND client_id = $2")
            .bind(id)
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        affected(done.rows_affected())?;
        tx.commit().await
    }

    async fn set_target_outcome(
        &self,
        client: ClientId,
        post: Uuid,
        profile: ChannelId,
        outcome: &TargetOutcome<'_>,
    ) -> Result<SocialPost> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let done = sqlx::query::<Db>(
            "UPDATE social_post_targets SET status = $4, \
             remote_id = COALESCE($5, remote_id), failure_reason = $6, \
             published_at = CASE WHEN $4 = 'published' THEN COALESCE(published_at, $7) \
                                 ELSE published_at END \
             WHERE post_id = $1 AND client_id = $2 AND channel_id = $3",
        )
        .bind(post)
        .bind(client.0)
        .bind(profile.0)
        .bind(outcome.status)
        .bind(outcome.remote_id)
        .bind(outcome.failure_reason)
        .bind(ms(at))
        .execute(&mut *tx)
        .await?;
        affected(done.rows_affected())?;
        let statuses = sqlx::query_scalar::<Db, String>(
            "SELECT status FROM social_post_targets WHERE post_id = $1 AND client_id = $2",
        )
        .bind(post)
        .bind(client.0)
        .fetch_all(&mut *tx)
        .await?;
        let pending = statuses.iter().any(|s| s == "pending");
        let failed = statuses.iter().any(|s| s == "failed");
        let all_deleted = statuses.iter().all(|s| s == "deleted");
        let next = match (pending, failed, all_deleted) {
            (true, _, _) => None,
            (false, true, _) => Some("failed"),
            (false, false, true) => Some("deleted"),
            (false, false, false) => Some("published"),
        };
        if let Some(next) = next {
            sqlx::query::<Db>(
                "UPDATE social_posts SET status = $3, updated_at = $4 \
                 WHERE id = $1 AND client_id = $2 AND status IN ('publishing', 'published', 'failed')",
            )
            .bind(post)
            .bind(client.0)
            .bind(next)
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.load_post(client, post).await
    }

    async fn set_target_counters(
        &self,
        client: ClientId,
        post: Uuid,
        profile: ChannelId,
        counters: [i64; 4],
    ) -> Result<()> {
        let done = sqlx::query::<Db>(
            "UPDATE social_post_targets SET likes = $4, comments = $5, reposts = $6, views = $7 \
             WHERE post_id = $1 AND client_id = $2 AND channel_id = $3",
        )
        .bind(post)
        .bind(client.0)
        .bind(profile.0)
        .bind(counters[0])
        .bind(counters[1])
        .bind(counters[2])
        .bind(counters[3])
        .execute(&self.pool)
        .await?;
        affected(done.rows_affected())
    }

    async fn link_social_thread(
        &self,
        client: ClientId,
        conversation: ConversationId,
        profile: ChannelId,
        remote_post_id: &str,
    ) -> Result<()> {
        sqlx::query::<Db>(
            "INSERT INTO social_threads (conversation_id, client_id, channel_id, remote_post_id, \
             post_id) VALUES ($1, $2, $3, $4, (SELECT post_id FROM social_post_targets \
             WHERE channel_id = $3 AND client_id = $2 AND remote_id = $4 LIMIT 1)) \
             ON CONFLICT (conversation_id) DO NOTHING",
        )
        .bind(conversation.0)
        .bind(client.0)
        .bind(profile.0)
        .bind(remote_post_id)
        .execute(&self.pool)
        .await
        .map_err(constraint("thread"))?;
        Ok(())
    }

    async fn social_thread(
        &self,
        client: ClientId,
        conversation: ConversationId,
    ) -> Result<Option<(ChannelId, String, Option<Uuid>)>> {
        let row = sqlx::query::<Db>(
            "SELECT channel_id, remote_post_id, post_id FROM social_threads \
             WHERE conversation_id = $1 AND client_id = $2",
        )
        .bind(conversation.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                ChannelId(r.try_get("channel_id")?),
                r.try_get("remote_post_id")?,
                r.try_get("post_id")?,
            ))
        })
        .transpose()
    }

    async fn post_threads(&self, client: ClientId, post: Uuid) -> Result<Vec<ConversationId>> {
        let ids = sqlx::query_scalar::<Db, Uuid>(
            "SELECT conversation_id FROM social_threads WHERE client_id = $1 AND post_id = $2 \
             ORDER BY conversation_id",
        )
        .bind(client.0)
        .bind(post)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(ConversationId).collect())
    }

    async fn create_social_media(&self, m: &NewSocialMedia) -> Result<SocialMedia> {
        let media = SocialMedia {
            id: Uuid::now_v7(),
            client_id: m.client_id,
            file_name: m.file_name.clone(),
            mime_type: m.mime_type.clone(),
            kind: omnihub_core::social::MediaKind::of_mime(&m.mime_type),
            size: m.size,
            storage_key: m.storage_key.clone(),
            uploaded_by: m.uploaded_by,
            created_at: now(),
        };
        sqlx::query::<Db>(
            "INSERT INTO social_media (id, client_id, file_name, mime_type, size, storage_key, \
             uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(media.id)
        .bind(media.client_id.0)
        .bind(&media.file_name)
        .bind(&media.mime_type)
        .bind(media.size)
        .bind(&media.storage_key)
        .bind(media.uploaded_by.map(|u| u.0))
        .bind(ms(media.created_at))
        .execute(&self.pool)
        .await?;
        Ok(media)
    }

    async fn get_social_media(&self, client: ClientId, id: Uuid) -> Result<SocialMedia> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            media_cols!(),
            " FROM social_media WHERE id = $1 AND client_id = $2"
        ))
        .bind(id)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        media_row(&found(row)?)
    }

    async fn list_social_media(&self, client: ClientId) -> Result<Vec<SocialMedia>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            media_cols!(),
            " FROM social_media WHERE client_id = $1 ORDER BY created_at DESC, id DESC LIMIT 500"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(media_row).collect()
    }

    async fn social_comment(&self, client: ClientId, message: MessageId) -> Result<SocialComment> {
        let row = sqlx::query::<Db>(
            "SELECT m.conversation_id, m.direction, m.provider_event_id, m.provider_message_id, \
             t.channel_id, t.remote_post_id FROM messages m JOIN social_threads t \
             ON t.conversation_id = m.conversation_id AND t.client_id = m.client_id \
             WHERE m.id = $1 AND m.client_id = $2",
        )
        .bind(message.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        let r = found(row)?;
        let direction: String = r.try_get("direction")?;
        let comment_id: Option<String> = if direction == "inbound" {
            r.try_get("provider_event_id")?
        } else {
            r.try_get("provider_message_id")?
        };
        Ok(SocialComment {
            conversation_id: ConversationId(r.try_get("conversation_id")?),
            profile_id: ChannelId(r.try_get("channel_id")?),
            remote_post_id: r.try_get("remote_post_id")?,
            comment_id,
        })
    }
}

/// Inserts a post's targets; a target that is not one of the client's profiles is `NotFound`.
async fn insert_targets(
    tx: &mut super::sql::WriteTx<'_>,
    client: ClientId,
    post: Uuid,
    targets: &[(ChannelId, Option<serde_json::Value>)],
) -> Result<()> {
    for (profile, content) in targets {
        let known = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM social_profiles WHERE channel_id = $1 AND client_id = $2",
        )
        .bind(profile.0)
        .bind(client.0)
        .fetch_one(&mut **tx)
        .await?;
        if known == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query::<Db>(
            "INSERT INTO social_post_targets (post_id, channel_id, client_id, content, status) \
             VALUES ($1, $2, $3, $4, 'pending')",
        )
        .bind(post)
        .bind(profile.0)
        .bind(client.0)
        .bind(content.as_ref().map(Json))
        .execute(&mut **tx)
        .await
        .map_err(constraint("profile"))?;
    }
    Ok(())
}
