//! The one SQL implementation of [`SchedulerStore`], compiled once inside each backend module
//! against that backend's `Db`, like `hub_sql.rs` (whose task columns and rows it shares).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::events::{EventKind, HubEvent};
use omnihub_core::triggers::Trigger;
use omnihub_core::*;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::hub_sql::task_row;
use super::sql::{constraint, found, user_in_client};
use super::{Backend, Db, lock_events, notify_event};
use crate::codec::{self, ms, now, ts};
use crate::hub::{NewTask, Task};
use crate::scheduler::*;
use crate::{Result, StoreError};

type DbRow = <Db as sqlx::Database>::Row;
type DbConn = <Db as sqlx::Database>::Connection;

macro_rules! task_cols {
    () => {
        "id, client_id, kind, payload, due_at, status, attempts, idempotency_key, last_error, \
         occurrence_at, recurrence, time_zone, series_id, catch_up, finished_at"
    };
}
macro_rules! trigger_cols {
    () => {
        "id, client_id, name, profile_id, condition, action, enabled, created_at"
    };
}
macro_rules! notification_cols {
    () => {
        "id, client_id, user_id, kind, payload, created_at, read_at"
    };
}

fn trigger_row(r: &DbRow) -> Result<Trigger> {
    Ok(Trigger {
        id: TriggerId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        name: r.try_get("name")?,
        profile_id: r.try_get("profile_id")?,
        condition: r
            .try_get::<Json<omnihub_core::triggers::TriggerCondition>, _>("condition")?
            .0,
        action: r
            .try_get::<Json<omnihub_core::triggers::TriggerAction>, _>("action")?
            .0,
        enabled: r.try_get("enabled")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

fn notification_row(r: &DbRow) -> Result<Notification> {
    Ok(Notification {
        id: NotificationId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        user_id: UserId(r.try_get("user_id")?),
        kind: r.try_get("kind")?,
        payload: r.try_get::<Json<serde_json::Value>, _>("payload")?.0,
        created_at: ts(r.try_get("created_at")?)?,
        read_at: codec::opt_ts(r.try_get("read_at")?)?,
    })
}

/// Ids bound in one statement at most.
const IDS_PER_STATEMENT: usize = 500;

/// The next occurrence of the series `source` belongs to, due at `due`; nothing when that
/// occurrence exists already.
async fn insert_next_occurrence(
    conn: &mut DbConn,
    source: &Task,
    due: DateTime<Utc>,
    created_at: DateTime<Utc>,
) -> Result<()> {
    let series = source.series_id.unwrap_or(source.id);
    sqlx::query::<Db>(
        "INSERT INTO tasks (id, client_id, kind, payload, due_at, status, attempts, \
         idempotency_key, created_at, occurrence_at, recurrence, time_zone, series_id, catch_up) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $5, $8, $9, $10, $11) \
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(source.client_id.map(|c| c.0))
    .bind(&source.kind)
    .bind(Json(&source.payload))
    .bind(ms(due))
    .bind(format!("{series}@{}", ms(due)))
    .bind(ms(created_at))
    .bind(&source.recurrence)
    .bind(&source.time_zone)
    .bind(series)
    .bind(&source.catch_up)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn load_task(conn: &mut DbConn, client: ClientId, id: Uuid) -> Result<Task> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        task_cols!(),
        " FROM tasks WHERE id = $1 AND client_id = $2"
    ))
    .bind(id)
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    task_row(&found(row)?)
}

fn trigger_json(rule: &NewTrigger) -> (serde_json::Value, serde_json::Value) {
    (
        serde_json::to_value(&rule.condition).unwrap_or_default(),
        serde_json::to_value(&rule.action).unwrap_or_default(),
    )
}

#[async_trait]
impl SchedulerStore for Backend {
    async fn schedule_task_with(&self, task: &NewTask, options: &TaskOptions) -> Result<Task> {
        let id = if options.id_from_key {
            task_id_for_key(&task.idempotency_key)
        } else {
            Uuid::now_v7()
        };
        let recurrence = options.recurrence.as_ref();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query::<Db>(concat!(
            "INSERT INTO tasks (id, client_id, kind, payload, due_at, status, attempts, \
             idempotency_key, created_at, occurrence_at, recurrence, time_zone, series_id, \
             catch_up) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $5, $8, $9, $10, $11) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING ",
            task_cols!()
        ))
        .bind(id)
        .bind(task.client_id.map(|c| c.0))
        .bind(&task.kind)
        .bind(Json(&task.payload))
        .bind(ms(task.due_at))
        .bind(&task.idempotency_key)
        .bind(ms(now()))
        .bind(recurrence.map(|r| r.expression().to_string()))
        .bind(recurrence.map(|r| r.zone().to_string()))
        .bind(recurrence.map(|_| id))
        .bind(options.catch_up.as_text())
        .fetch_optional(&mut *tx)
        .await
        .map_err(constraint("task"))?;
        let row = match row {
            Some(row) => row,
            None => {
                let row = sqlx::query::<Db>(concat!(
                    "SELECT ",
                    task_cols!(),
                    " FROM tasks WHERE idempotency_key = $1"
                ))
                .bind(&task.idempotency_key)
                .fetch_optional(&mut *tx)
                .await?;
                found(row)?
            }
        };
        let task = task_row(&row)?;
        tx.commit().await?;
        Ok(task)
    }

    async fn finish_tasks(
        &self,
        finished: &[FinishedTask],
        node: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if finished.is_empty() {
            return Ok(0);
        }
        let mut recorded = 0;
        let mut tx = self.begin_write().await?;
        // One-off successes, the bulk of any round, in a few statements.
        let plain: Vec<Uuid> = finished
            .iter()
            .filter(|f| f.outcome == TaskOutcome::Done && f.next_due.is_none())
            .map(|f| f.id)
            .collect();
        for chunk in plain.chunks(IDS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Db>::new(
                "UPDATE tasks SET status = 'done', locked_by = NULL, locked_until = NULL, \
                 finished_at = ",
            );
            q.push_bind(ms(now))
                .push(" WHERE status = 'running' AND locked_by = ")
                .push_bind(node)
                .push(" AND id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            recorded += q.build().execute(&mut *tx).await?.rows_affected();
        }
        for f in finished
            .iter()
            .filter(|f| f.outcome != TaskOutcome::Done || f.next_due.is_some())
        {
            let (status, error, due) = match &f.outcome {
                TaskOutcome::Done => ("done", None, None),
                TaskOutcome::Failed {
                    error,
                    retry_at: Some(at),
                } => ("pending", Some(error.as_str()), Some(*at)),
                TaskOutcome::Failed {
                    error,
                    retry_at: None,
                } => ("failed", Some(error.as_str()), None),
                TaskOutcome::Skipped { reason } => ("skipped", Some(reason.as_str()), None),
            };
            let ended = status != "pending";
            let row = sqlx::query::<Db>(concat!(
                "UPDATE tasks SET status = $3, last_error = COALESCE($4, last_error), \
                 due_at = COALESCE($5, due_at), finished_at = $6, locked_by = NULL, \
                 locked_until = NULL WHERE id = $1 AND status = 'running' AND locked_by = $2 \
                 RETURNING ",
                task_cols!()
            ))
            .bind(f.id)
            .bind(node)
            .bind(status)
            .bind(error)
            .bind(due.map(ms))
            .bind(ended.then(|| ms(now)))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { continue };
            recorded += 1;
            if let (true, Some(next)) = (ended, f.next_due) {
                let task = task_row(&row)?;
                if task.recurrence.is_some() {
                    insert_next_occurrence(&mut tx, &task, next, now).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn list_tasks(&self, client: ClientId, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut q = QueryBuilder::<Db>::new(concat!(
            "SELECT ",
            task_cols!(),
            " FROM tasks WHERE client_id = "
        ));
        q.push_bind(client.0);
        if let Some(status) = &filter.status {
            q.push(" AND status = ")
                .push_bind(codec::task_status_text(status));
        }
        if let Some(kind) = &filter.kind {
            q.push(" AND kind = ").push_bind(kind.clone());
        }
        if let Some(from) = filter.from {
            q.push(" AND due_at >= ").push_bind(ms(from));
        }
        if let Some(to) = filter.to {
            q.push(" AND due_at < ").push_bind(ms(to));
        }
        q.push(" ORDER BY due_at, id LIMIT ")
            .push_bind(codec::page_limit(filter.limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(task_row).collect()
    }

    async fn get_task(&self, client: ClientId, id: Uuid) -> Result<Task> {
        let mut conn = self.pool.acquire().await?;
        load_task(&mut conn, client, id).await
    }

    async fn cancel_task(
        &self,
        client: ClientId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        let mut tx = self.begin_write().await?;
        load_task(&mut tx, client, id).await?;
        let row = sqlx::query::<Db>(concat!(
            "UPDATE tasks SET status = 'cancelled', finished_at = $3 \
             WHERE id = $1 AND client_id = $2 AND status IN ('pending', 'failed') RETURNING ",
            task_cols!()
        ))
        .bind(id)
        .bind(client.0)
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let task = row.as_ref().map(task_row).transpose()?;
        tx.commit().await?;
        Ok(task)
    }

    async fn reschedule_task(
        &self,
        client: ClientId,
        id: Uuid,
        due_at: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        let mut tx = self.begin_write().await?;
        load_task(&mut tx, client, id).await?;
        let row = sqlx::query::<Db>(concat!(
            "UPDATE tasks SET due_at = $3, finished_at = NULL, \
             attempts = CASE WHEN status = 'pending' THEN attempts ELSE 0 END, \
             status = 'pending' \
             WHERE id = $1 AND client_id = $2 AND status IN ('pending', 'failed', 'skipped') \
             RETURNING ",
            task_cols!()
        ))
        .bind(id)
        .bind(client.0)
        .bind(ms(due_at))
        .fetch_optional(&mut *tx)
        .await?;
        let task = row.as_ref().map(task_row).transpose()?;
        tx.commit().await?;
        Ok(task)
    }

    async fn create_trigger(&self, client: ClientId, rule: &NewTrigger) -> Result<Trigger> {
        let (condition, action) = trigger_json(rule);
        let row = sqlx::query::<Db>(concat!(
            "INSERT INTO triggers (id, client_id, name, profile_id, condition, action, enabled, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
            trigger_cols!()
        ))
        .bind(TriggerId::new().0)
        .bind(client.0)
        .bind(&rule.name)
        .bind(rule.profile_id)
        .bind(Json(&condition))
        .bind(Json(&action))
        .bind(rule.enabled)
        .bind(ms(now()))
        .fetch_one(&self.pool)
        .await
        .map_err(constraint("trigger"))?;
        trigger_row(&row)
    }

    async fn list_triggers(&self, client: ClientId) -> Result<Vec<Trigger>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            trigger_cols!(),
            " FROM triggers WHERE client_id = $1 ORDER BY created_at, id"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(trigger_row).collect()
    }

    async fn get_trigger(&self, client: ClientId, id: TriggerId) -> Result<Trigger> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            trigger_cols!(),
            " FROM triggers WHERE id = $1 AND client_id = $2"
        ))
        .bind(id.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        trigger_row(&found(row)?)
    }

    async fn update_trigger(
        &self,
        client: ClientId,
        id: TriggerId,
        rule: &NewTrigger,
    ) -> Result<Trigger> {
        let (condition, action) = trigger_json(rule);
        let row = sqlx::query::<Db>(concat!(
            "UPDATE triggers SET name = $3, profile_id = $4, condition = $5, action = $6, \
             enabled = $7 WHERE id = $1 AND client_id = $2 RETURNING ",
            trigger_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(&rule.name)
        .bind(rule.profile_id)
        .bind(Json(&condition))
        .bind(Json(&action))
        .bind(rule.enabled)
        .fetch_optional(&self.pool)
        .await?;
        trigger_row(&found(row)?)
    }

    async fn delete_trigger(&self, client: ClientId, id: TriggerId) -> Result<()> {
        let done = sqlx::query::<Db>("DELETE FROM triggers WHERE id = $1 AND client_id = $2")
            .bind(id.0)
            .bind(client.0)
            .execute(&self.pool)
            .await?;
        super::sql::affected(done.rows_affected())
    }

    async fn create_notification(
        &self,
        id: NotificationId,
        client: ClientId,
        user: UserId,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<Option<(Notification, HubEvent)>> {
        let mut tx = self.begin_write().await?;
        user_in_client(&mut tx, client, user).await?;
        let created_at = now();
        let row = sqlx::query::<Db>(concat!(
            "INSERT INTO notifications (id, client_id, user_id, kind, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING ",
            notification_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(user.0)
        .bind(kind)
        .bind(Json(payload))
        .bind(ms(created_at))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let notification = notification_row(&row)?;
        let event_payload =
            serde_json::to_value(&notification).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        lock_events(&mut tx, client).await?;
        let seq = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO events (client_id, assignee_id, kind, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING seq",
        )
        .bind(client.0)
        .bind(user.0)
        .bind(EventKind::Notification.as_str())
        .bind(Json(&event_payload))
        .bind(ms(created_at))
        .fetch_one(&mut *tx)
        .await?;
        notify_event(&mut tx, client, seq).await?;
        tx.commit().await?;
        let event = HubEvent {
            seq,
            client_id: client,
            conversation_id: None,
            channel_id: None,
            assignee_id: Some(user),
            group_id: None,
            kind: EventKind::Notification,
            payload: event_payload,
            created_at,
        };
        Ok(Some((notification, event)))
    }

    async fn list_notifications(
        &self,
        client: ClientId,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            notification_cols!(),
            " FROM notifications WHERE client_id = $1 AND user_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(client.0)
        .bind(user.0)
        .bind(codec::page_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_row).collect()
    }
}
