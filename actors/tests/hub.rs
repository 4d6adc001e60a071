#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The hub through its public API, against a real SQLite store: the janitor really removes
//! expired rows, and the tree starts and stops cleanly; the realtime hub (`realtime`) carries
//! messages from ingest to consoles and replies to a real HTTP receiver; the scheduler
//! (`scheduler`) fires tasks once on a manual clock, catches up after downtime, recurs, and
//! runs triggered tasks.

#[path = "hub/realtime.rs"]
mod realtime;
#[path = "hub/scheduler.rs"]
mod scheduler;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use omnihub_actors::{ChildStatus, Hub, HubConfig, HubError};
use omnihub_core::Role;
use omnihub_store::{DynStore, NewUser, SecretBox, Session, StoreError};

struct TempStore {
    store: DynStore,
    dir: PathBuf,
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn sqlite() -> TempStore {
    let dir =
        std::env::temp_dir().join(format!("omnihub-actors-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", dir.join("omnihub.db").display());
    let store = omnihub_store::open(&url, SecretBox::generate().0)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    TempStore { store, dir }
}

fn session(
    user: omnihub_core::UserId,
    token: &str,
    created: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Session {
    Session {
        token_hash: token.as_bytes().to_vec(),
        user_id: user,
        csrf_token: format!("csrf-{token}"),
        created_at: created,
        expires_at: expires,
        last_seen_at: created,
        ip: None,
        user_agent: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_deletes_expired_sessions_and_nothing_else() {
    let db = sqlite().await;
    let store = db.store.clone();
    let user = store
        .create_user(&NewUser {
            email: "janitor@platform.test".into(),
            display_name: "Janitor test".into(),
            password_hash: "not a real hash".into(),
            role: Role::PlatformModerator,
            client_id: None,
            global_rights: Role::PlatformModerator.default_global_rights(),
            locale: "en".into(),
        })
        .await
        .unwrap();
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    store
        .create_session(&session(user.id, "expired", now - hour * 2, now - hour))
        .await
        .unwrap();
    store
        .create_session(&session(user.id, "live", now, now + hour))
        .await
        .unwrap();

    // touch_session refuses sessions expired at the time it is given, so asking at a moment
    // when "expired" was still live tells whether its row still exists without removing it.
    let while_live = now - hour - chrono::Duration::minutes(30);
    assert!(store.touch_session(b"expired", while_live).await.is_ok());

    let hub = Hub::start(
        store.clone(),
        HubConfig {
            janitor_interval: Duration::from_millis(50),
            ..HubConfig::default()
        },
    )
    .await
    .unwrap();
    let health = hub.health();
    assert!(health.root_running);
    assert!(health.is_healthy(), "{health:?}");
    assert_eq!(
        health.child("janitor").unwrap().status,
        ChildStatus::Running
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.touch_session(b"expired", while_live).await {
            Err(StoreError::NotFound) => break,
            Ok(_) => {}
            Err(err) => panic!("unexpected store error: {err}"),
        }
        assert!(
            Instant::now() < deadline,
            "the janitor never removed the expired session"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The live session is untouched, and the janitor is still fine after sweeping repeatedly.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(store.touch_session(b"live", Utc::now()).await.is_ok());
    let janitor = hub.health().child("janitor").cloned().unwrap();
    assert_eq!(janitor.status, ChildStatus::Running);
    assert_eq!(janitor.restarts, 0);

    tokio::time::timeout(Duration::from_secs(2), hub.stop())
        .await
        .expect("stop did not return promptly");

    // Nothing was left for a manual sweep, and no janitor runs any more to delete a row that
    // expires from now on.
    assert_eq!(store.delete_expired(Utc::now()).await.unwrap(), 0);
    store
        .create_session(&session(
            user.id,
            "expired-after-stop",
            now - hour * 2,
            now - hour,
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.delete_expired(Utc::now()).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_interval_is_refused() {
    let db = sqlite().await;
    let err = Hub::start(
        db.store.clone(),
        HubConfig {
            janitor_interval: Duration::ZERO,
            ..HubConfig::default()
        },
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, HubError::Config(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_hub_stops_the_janitor() {
    let db = sqlite().await;
    let hub = Hub::start(
        db.store.clone(),
        HubConfig {
            janitor_interval: Duration::from_millis(20),
            ..HubConfig::default()
        },
    )
    .await
    .unwrap();
    drop(hub);
    // Give the tree a moment to wind down, then check no sweep runs any more.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let user = db
        .store
        .create_user(&NewUser {
            email: "dropped@platform.test".into(),
            display_name: "Drop test".into(),
            password_hash: "not a real hash".into(),
            role: Role::PlatformModerator,
            client_id: None,
            global_rights: Role::PlatformModerator.default_global_rights(),
            locale: "en".into(),
        })
        .await
        .unwrap();
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    db.store
        .create_session(&session(user.id, "stale", now - hour * 2, now - hour))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(db.store.delete_expired(Utc::now()).await.unwrap(), 1);
}
