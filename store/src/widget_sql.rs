//! The one SQL implementation of [`WidgetStore`], compiled once inside each backend module
//! against that backend's `Db`, like `sql.rs` (whose helpers it shares).

use async_trait::async_trait;
use omnihub_core::model::*;
use omnihub_core::*;
use sqlx::Row;
use sqlx::types::Json;
use uuid::Uuid;

use super::sql::{channel_row, constraint, found};
use super::{Backend, Db};
use crate::codec::{ms, now, ts};
use crate::widget::*;
use crate::{NewChannel, Result, StoreError};

type DbRow = <Db as sqlx::Database>::Row;

macro_rules! visitor_cols {
    () => {
        "id, client_id, channel_id, name, details, created_at, last_seen_at"
    };
}

fn visitor_row(r: &DbRow) -> Result<Visitor> {
    Ok(Visitor {
        id: r.try_get("id")?,
        client_id: ClientId(r.try_get("client_id")?),
        channel_id: ChannelId(r.try_get("channel_id")?),
        name: r.try_get("name")?,
        details: r.try_get::<Json<serde_json::Value>, _>("details")?.0,
        created_at: ts(r.try_get("created_at")?)?,
        last_seen_at: ts(r.try_get("last_seen_at")?)?,
    })
}

#[async_trait]
impl WidgetStore for Backend {
    async fn create_widget(&self, ch: &NewChannel, public_key: &str) -> Result<Channel> {
        if ch.provider != Provider::Widget || ch.credentials.is_some() {
            return Err(StoreError::Conflict("provider"));
        }
        let channel = Channel {
            id: ChannelId::new(),
            client_id: ch.client_id,
            kind: ch.kind,
            provider: ch.provider,
            name: ch.name.clone(),
            settings: ch.settings.clone(),
            has_credentials: false,
            created_at: now(),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query::<Db>(
            "INSERT INTO channels (id, client_id, kind, provider, name, settings, credentials, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
        )
        .bind(channel.id.0)
        .bind(channel.client_id.0)
        .bind(channel.kind.as_str())
        .bind(channel.provider.as_str())
        .bind(&channel.name)
        .bind(Json(&channel.settings))
        .bind(ms(channel.created_at))
        .execute(&mut *tx)
        .await
        .map_err(constraint("channel"))?;
        sqlx::query::<Db>(
            "INSERT INTO widget_keys (channel_id, client_id, public_key) VALUES ($1, $2, $3)",
        )
        .bind(channel.id.0)
        .bind(channel.client_id.0)
        .bind(public_key)
        .execute(&mut *tx)
        .await
        .map_err(constraint("public_key"))?;
        tx.commit().await?;
        Ok(channel)
    }

    async fn widget_key(&self, client: ClientId, channel: ChannelId) -> Result<String> {
        let key = sqlx::query_scalar::<Db, String>(
            "SELECT public_key FROM widget_keys WHERE channel_id = $1 AND client_id = $2",
        )
        .bind(channel.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        found(key)
    }

    async fn widget_by_key(&self, public_key: &str) -> Result<Channel> {
        let row = sqlx::query::<Db>(
            "SELECT c.id, c.client_id, c.kind, c.provider, c.name, c.settings, \
             c.credentials IS NOT NULL AS has_credentials, c.created_at \
             FROM widget_keys k JOIN channels c ON c.id = k.channel_id AND c.client_id = k.client_id \
             WHERE k.public_key = $1",
        )
        .bind(public_key)
        .fetch_optional(&self.pool)
        .await?;
        channel_row(&found(row)?)
    }

    async fn create_visitor(&self, v: &NewVisitor) -> Result<Visitor> {
        let at = now();
        let visitor = Visitor {
            id: Uuid::now_v7(),
            client_id: v.client_id,
            channel_id: v.channel_id,
            name: v.name.clone(),
            details: v.details.clone(),
            created_at: at,
            last_seen_at: at,
        };
        let mut tx = self.begin_write().await?;
        // Only a widget of this client takes visitors.
        let is_widget = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM widget_keys WHERE channel_id = $1 AND client_id = $2",
        )
        .bind(v.channel_id.0)
        .bind(v.client_id.0)
        .fetch_one(&mut *tx)
        .await?;
        if is_widget == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query::<Db>(
            "INSERT INTO widget_visitors (id, client_id, channel_id, token_hash, name, details, \
             created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(visitor.id)
        .bind(visitor.client_id.0)
        .bind(visitor.channel_id.0)
        .bind(&v.token_hash)
        .bind(&visitor.name)
        .bind(Json(&visitor.details))
        .bind(ms(at))
        .execute(&mut *tx)
        .await
        .map_err(constraint("token"))?;
        tx.commit().await?;
        Ok(visitor)
    }

    async fn visitor_by_token(&self, channel: ChannelId, token_hash: &[u8]) -> Result<Visitor> {
        let row = sqlx::query::<Db>(concat!(
            "UPDATE widget_visitors SET last_seen_at = $3 \
             WHERE token_hash = $1 AND channel_id = $2 RETURNING ",
            visitor_cols!()
        ))
        .bind(token_hash)
        .bind(channel.0)
        .bind(ms(now()))
        .fetch_optional(&self.pool)
        .await?;
        visitor_row(&found(row)?)
    }

    async fn conversation_by_external_id(
        &self,
        client: ClientId,
        channel: ChannelId,
        external_id: &str,
    ) -> Result<Option<ConversationId>> {
        let id = sqlx::query_scalar::<Db, Uuid>(
            "SELECT id FROM conversations WHERE channel_id = $1 AND client_id = $2 \
             AND external_id = $3",
        )
        .bind(channel.0)
        .bind(client.0)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(ConversationId))
    }
}
