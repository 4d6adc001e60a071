//! The scheduler on a manual clock: nothing here waits for wall time to pass before a task is
//! due; the clock is moved and the scheduler wakes. What the tests wait for is the scheduler's
//! work, counted by the handlers it runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone as _, Utc};
use futures_util::StreamExt as _;
use omnihub_actors::{Hub, HubConfig, ManualClock, TaskFailure, TaskHandler, TaskHandlers};
use omnihub_core::events::EventKind;
use omnihub_core::model::Client;
use omnihub_core::schedule::{CatchUp, Recurrence};
use omnihub_core::triggers::{ItemKind, SOCIAL_LIKE, SocialItem, TriggerAction, TriggerCondition};
use omnihub_core::{GlobalRights, Role};
use omnihub_store::{
    DynStore, NewTask, NewTrigger, NewUser, Task, TaskFilter, TaskOptions, TaskStatus,
};
use tokio::sync::Notify;

use crate::sqlite;

/// Longest any expected piece of the scheduler's work may take.
const WAIT: Duration = Duration::from_secs(60);
const KIND: &str = "test.count";

/// Counts each task's runs, by task id; fails a task whose payload says `"fail": true`.
#[derive(Default)]
struct Counter {
    runs: Mutex<HashMap<uuid::Uuid, u32>>,
    changed: Notify,
}

#[async_trait]
impl TaskHandler for Counter {
    async fn run(&self, task: &Task) -> Result<(), TaskFailure> {
        *self.runs.lock().unwrap().entry(task.id).or_default() += 1;
        self.changed.notify_waiters();
        if task.payload["fail"] == true {
            return Err(TaskFailure::Permanent("the provider said no".into()));
        }
        Ok(())
    }
}

impl Counter {
    fn total(&self) -> u32 {
        self.runs.lock().unwrap().values().sum()
    }

    /// Waits (on the handler, not on a timer) until `done` holds of the runs.
    async fn until(&self, what: &str, done: impl Fn(&HashMap<uuid::Uuid, u32>) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let changed = self.changed.notified();
            if done(&self.runs.lock().unwrap()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                tokio::time::timeout(left, changed).await.is_ok(),
                "{what}: not within {WAIT:?} ({} runs)",
                self.total()
            );
        }
    }
}

/// Waits until the store says so (the scheduler records outcomes after the handlers return).
async fn until_store(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn start_of(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

async fn hub(store: &DynStore, clock: &Arc<ManualClock>, counter: &Arc<Counter>) -> Hub {
    Hub::start(
        store.clone(),
        HubConfig {
            clock: clock.clone(),
            task_handlers: TaskHandlers::default()
                .with(KIND, counter.clone())
                .with(SOCIAL_LIKE, counter.clone()),
            ..HubConfig::default()
        },
    )
    .await
    .unwrap()
}

fn task(client: &Client, key: &str, due_at: DateTime<Utc>) -> NewTask {
    NewTask {
        client_id: Some(client.id),
        kind: KIND.into(),
        payload: serde_json::json!({ "n": key }),
        due_at,
        idempotency_key: key.into(),
    }
}

async fn all_tasks(store: &DynStore, client: &Client) -> Vec<Task> {
    store
        .list_tasks(
            client.id,
            &TaskFilter {
                limit: 1000,
                ..TaskFilter::default()
            },
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_due_in_the_same_minute_each_fire_once() {
    const N: usize = 10_000;
    let db = sqlite().await;
    let store = db.store.clone();
    let client = store.create_client("Minute Ltd", None).await.unwrap();
    let t0 = start_of("2026-06-01T12:00:00Z");
    let clock = ManualClock::new(t0);
    let minute = t0 + chrono::Duration::minutes(1);
    // A canary due earlier: once it ran, a round happened while the others were not due.
    store
        .schedule_task(&task(&client, "canary", t0 + chrono::Duration::seconds(30)))
        .await
        .unwrap();
    let scheduled: Vec<Task> = futures_util::stream::iter(0..N)
        .map(|i| {
            let store = store.clone();
            // Spread over the minute: 6 ms apart.
            let due = minute + chrono::Duration::milliseconds(6 * i as i64);
            let t = task(&client, &format!("minute-{i}"), due);
            async move { store.schedule_task(&t).await.unwrap() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let counter = Arc::new(Counter::default());
    let hub = hub(&store, &clock, &counter).await;

    clock.advance(Duration::from_secs(30));
    counter.until("the canary", |runs| runs.len() == 1).await;
    assert_eq!(counter.total(), 1, "only the canary was due");

    clock.advance(Duration::from_secs(90));
    counter
        .until("every task of the minute", |runs| runs.len() == N + 1)
        .await;
    until_store("every task recorded done", async || {
        store.next_task_due().await.unwrap().is_none()
    })
    .await;
    let runs = counter.runs.lock().unwrap().clone();
    for t in &scheduled {
        assert_eq!(runs.get(&t.id), Some(&1), "task {}", t.idempotency_key);
    }
    assert_eq!(counter.total() as usize, N + 1, "no task ran twice");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_policies_after_downtime() {
    let db = sqlite().await;
    let store = db.store.clone();
    let client = store.create_client("Downtime Ltd", None).await.unwrap();
    let t0 = start_of("2026-06-01T10:00:00Z");
    let hourly = Recurrence::parse("0 * * * *", "Europe/Moscow").unwrap();
    let recurring = |catch_up| TaskOptions {
        recurrence: Some(hourly.clone()),
        catch_up,
        ..TaskOptions::default()
    };
    let all = store
        .schedule_task_with(
            &task(&client, "all", t0),
            &recurring(CatchUp::FireAllMissed),
        )
        .await
        .unwrap();
    let once = store
        .schedule_task_with(&task(&client, "once", t0), &recurring(CatchUp::FireOnce))
        .await
        .unwrap();
    let too_late = store
        .schedule_task_with(
            &task(&client, "too-late", t0),
            &TaskOptions {
                catch_up: CatchUp::SkipIfOlderThan { seconds: 600 },
                ..TaskOptions::default()
            },
        )
        .await
        .unwrap();
    let late_enough = store
        .schedule_task_with(
            &task(&client, "in-time", t0),
            &TaskOptions {
                catch_up: CatchUp::SkipIfOlderThan { seconds: 5 * 3600 },
                ..TaskOptions::default()
            },
        )
        .await
        .unwrap();

    // Nothing ran from 10:00 to 13:20; then the node starts.
    let clock = ManualClock::new(t0 + chrono::Duration::minutes(200));
    let counter = Arc::new(Counter::default());
    let hub = hub(&store, &clock, &counter).await;
    let next_hour = t0 + chrono::Duration::hours(4);
    until_store("both series waiting for 14:00", async || {
        let tasks = all_tasks(&store, &client).await;
        let pending_at = |series: uuid::Uuid| {
            tasks.iter().any(|t| {
                t.series_id == Some(series)
                    && t.status == TaskStatus::Pending
                    && t.due_at == next_hour
            })
        };
        pending_at(all.id) && pending_at(once.id)
    })
    .await;
    until_store("the one-offs settled", async || {
        let skipped = store.get_task(client.id, too_late.id).await.unwrap();
        let ran = store.get_task(client.id, late_enough.id).await.unwrap();
        skipped.status == TaskStatus::Skipped && ran.status == TaskStatus::Done
    })
    .await;

    let tasks = all_tasks(&store, &client).await;
    let runs = counter.runs.lock().unwrap().clone();
    let ran = |series: uuid::Uuid| -> Vec<DateTime<Utc>> {
        let mut at: Vec<_> = tasks
            .iter()
            .filter(|t| t.series_id == Some(series) && t.status == TaskStatus::Done)
            .inspect(|t| assert_eq!(runs.get(&t.id), Some(&1), "{t:?}"))
            .map(|t| t.occurrence_at)
            .collect();
        at.sort();
        at
    };
    let hours = |n: i64| t0 + chrono::Duration::hours(n);
    assert_eq!(
        ran(all.id),
        vec![hours(0), hours(1), hours(2), hours(3)],
        "every missed occurrence once"
    );
    assert_eq!(ran(once.id), vec![hours(0)], "the missed ones coalesced");
    let skipped = store.get_task(client.id, too_late.id).await.unwrap();
    assert!(
        !runs.contains_key(&too_late.id),
        "a skipped task does not run"
    );
    let reason = skipped.last_error.unwrap();
    assert!(reason.contains("12000 s late"), "{reason}");
    assert!(reason.contains("skip_if_older_than:600"), "{reason}");
    assert_eq!(runs.get(&late_enough.id), Some(&1));

    // On time from now on: one run per hour as the clock moves.
    clock.advance(Duration::from_secs(40 * 60));
    until_store("14:00 ran in both series", async || {
        let tasks = all_tasks(&store, &client).await;
        tasks
            .iter()
            .filter(|t| t.due_at == next_hour && t.status == TaskStatus::Done)
            .count()
            == 2
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_task_that_fails_for_good_still_recurs_and_says_why() {
    let db = sqlite().await;
    let store = db.store.clone();
    let client = store.create_client("Failing Ltd", None).await.unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
    let clock = ManualClock::new(t0 - chrono::Duration::seconds(1));
    let mut failing = task(&client, "daily", t0);
    failing.payload["fail"] = true.into();
    let first = store
        .schedule_task_with(
            &failing,
            &TaskOptions {
                recurrence: Some(Recurrence::parse("0 9 * * *", "UTC").unwrap()),
                ..TaskOptions::default()
            },
        )
        .await
        .unwrap();
    let counter = Arc::new(Counter::default());
    let hub = hub(&store, &clock, &counter).await;
    clock.advance(Duration::from_secs(1));
    until_store("the next day's occurrence", async || {
        all_tasks(&store, &client).await.len() == 2
    })
    .await;
    let failed = store.get_task(client.id, first.id).await.unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("the provider said no"));
    let next = all_tasks(&store, &client).await.pop().unwrap();
    assert_eq!(
        (next.status, next.due_at, next.series_id),
        (
            TaskStatus::Pending,
            t0 + chrono::Duration::days(1),
            Some(first.id)
        )
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashtag_and_author_triggers_fire_once_on_their_comments_only() {
    let db = sqlite().await;
    let store = db.store.clone();
    let client = store.create_client("Triggers Ltd", None).await.unwrap();
    let smm = store
        .create_user(&NewUser {
            email: "smm@triggers.test".into(),
            display_name: "SMM".into(),
            password_hash: "x".into(),
            role: Role::Employee,
            client_id: Some(client.id),
            global_rights: GlobalRights::SCHEDULING,
            locale: "ru".into(),
        })
        .await
        .unwrap();
    let profile = uuid::Uuid::now_v7();
    let by_tag = store
        .create_trigger(
            client.id,
            &NewTrigger {
                name: "скидки".into(),
                profile_id: None,
                condition: TriggerCondition::Hashtag {
                    hashtag: "#Скидка".into(),
                },
                action: TriggerAction::Notify { user_id: smm.id },
                enabled: true,
            },
        )
        .await
        .unwrap();
    let by_author = store
        .create_trigger(
            client.id,
            &NewTrigger {
                name: "VIP".into(),
                profile_id: Some(profile),
                condition: TriggerCondition::Author {
                    author_id: "777".into(),
                },
                action: TriggerAction::Like,
                enabled: true,
            },
        )
        .await
        .unwrap();
    let clock = ManualClock::new(Utc::now());
    let counter = Arc::new(Counter::default());
    let hub = hub(&store, &clock, &counter).await;
    let handle = hub.handle();
    let comment = |remote: &str, author: &str, text: &str| SocialItem {
        client_id: client.id,
        profile_id: profile,
        network: "vk".into(),
        kind: ItemKind::Comment,
        remote_id: remote.into(),
        parent_remote_id: Some("post-1".into()),
        author_id: author.into(),
        author_name: "Пётр".into(),
        text: text.into(),
        created_at: Utc::now(),
    };
    let tagged = comment("c1", "100", "Есть #СКИДКА на зиму?");
    let vip = comment("c2", "777", "Хороший пост");
    let neither = comment("c3", "100", "Просто скидка, без тега #скидки");

    let fired = handle.social_item_arrived(&tagged).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].kind, "trigger.notify");
    assert_eq!(fired[0].idempotency_key, by_tag.task_key(&tagged));
    let liked = handle.social_item_arrived(&vip).await.unwrap();
    assert_eq!(liked.len(), 1);
    assert_eq!(liked[0].kind, SOCIAL_LIKE);
    assert_eq!(liked[0].payload["remote_id"], "c2");
    assert_eq!(liked[0].payload["target"], "comment");
    assert_eq!(liked[0].idempotency_key, by_author.task_key(&vip));
    assert!(
        handle
            .social_item_arrived(&neither)
            .await
            .unwrap()
            .is_empty()
    );
    // The same author on another profile: the VIP rule is bound to this one.
    let mut elsewhere = vip.clone();
    elsewhere.profile_id = uuid::Uuid::now_v7();
    elsewhere.remote_id = "c4".into();
    assert!(
        handle
            .social_item_arrived(&elsewhere)
            .await
            .unwrap()
            .is_empty()
    );

    counter.until("the like", |runs| runs.len() == 1).await;
    until_store("the notification", async || {
        !store
            .list_notifications(client.id, smm.id, 10)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    // Redelivered items: the same tasks, nothing new scheduled, nothing run again.
    let again = handle.social_item_arrived(&tagged).await.unwrap();
    assert_eq!(again[0].id, fired[0].id);
    let again = handle.social_item_arrived(&vip).await.unwrap();
    assert_eq!(again[0].id, liked[0].id);
    until_store("every trigger task done", async || {
        store.next_task_due().await.unwrap().is_none()
    })
    .await;
    assert_eq!(all_tasks(&store, &client).await.len(), 2);
    assert_eq!(counter.total(), 1, "liked once");
    let notes = store
        .list_notifications(client.id, smm.id, 10)
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].payload["item"]["remote_id"], "c1");
    assert_eq!(notes[0].payload["trigger_name"], "скидки");
    // Pushed to the employee's consoles: one `notification` event addressed to them.
    let events = store.events_after(client.id, 0, 100).await.unwrap();
    let pushed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Notification)
        .collect();
    assert_eq!(pushed.len(), 1, "{events:?}");
    assert_eq!(pushed[0].assignee_id, Some(smm.id));
    hub.stop().await;
}
