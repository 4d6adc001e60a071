//! Supervision tests: misbehaving children under a real root, through the same `supervised`
//! path the janitor uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::shared::Shared;
use crate::supervisor::{ChildSpec, supervised};
use crate::{ChildStatus, Hub, HubConfig, HubHealth, RestartPolicy};

#[derive(Clone, Copy)]
enum Fault {
    /// Panics in its first message handler.
    Panic,
    /// Returns an error from its first message handler.
    Error,
    /// Refuses to start at all.
    Start,
}

/// Misbehaves during its first `fail_first` starts, then runs quietly.
struct Flaky {
    fault: Fault,
    fail_first: u32,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    starts: AtomicU32,
    stops: AtomicU32,
}

impl Counts {
    fn starts(&self) -> u32 {
        self.starts.load(Ordering::SeqCst)
    }
    fn stops(&self) -> u32 {
        self.stops.load(Ordering::SeqCst)
    }
}

impl Actor for Flaky {
    type Msg = ();
    /// Which start this instance is.
    type State = u32;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<u32, ActorProcessingErr> {
        let start = self.counts.starts.fetch_add(1, Ordering::SeqCst) + 1;
        if matches!(self.fault, Fault::Start) && start <= self.fail_first {
            return Err("injected start failure".into());
        }
        Ok(start)
    }

    async fn post_start(&self, me: ActorRef<()>, _: &mut u32) -> Result<(), ActorProcessingErr> {
        me.send_message(())?;
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<()>,
        _: (),
        start: &mut u32,
    ) -> Result<(), ActorProcessingErr> {
        if *start <= self.fail_first {
            match self.fault {
                Fault::Panic => panic!("injected panic"),
                Fault::Error => return Err("injected error".into()),
                Fault::Start => {}
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<()>, _: &mut u32) -> Result<(), ActorProcessingErr> {
        self.counts.stops.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn flaky(name: &str, fault: Fault, fail_first: u32) -> (Box<dyn ChildSpec>, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    let spec = supervised(name, move || {
        let actor = Flaky {
            fault,
            fail_first,
            counts: shared.clone(),
        };
        (actor, ())
    });
    (spec, counts)
}

/// Fast back-off so the tests take milliseconds; three restarts a minute, then give up.
fn quick_policy() -> RestartPolicy {
    RestartPolicy::new(
        Duration::from_millis(1),
        Duration::from_millis(20),
        3,
        Duration::from_secs(60),
    )
}

async fn wait_for(hub: &Hub, what: &str, pred: impl Fn(&HubHealth) -> bool) -> HubHealth {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = hub.health();
        if pred(&health) {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A hub over exactly these children. The store is an empty in-memory SQLite database: none
/// of these children touches it.
async fn start(children: Vec<Box<dyn ChildSpec>>) -> Hub {
    let store = omnihub_store::open("sqlite::memory:", omnihub_store::SecretBox::generate().0)
        .await
        .unwrap();
    let shared = Arc::new(Shared::new(store, HubConfig::default()));
    Hub::start_with(children, quick_policy(), shared)
        .await
        .unwrap()
}

async fn stop_promptly(hub: Hub) {
    tokio::time::timeout(Duration::from_secs(2), hub.stop())
        .await
        .expect("stop did not return within 2 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_child_is_restarted_and_the_process_survives() {
    let (spec, counts) = flaky("flaky", Fault::Panic, 2);
    let hub = start(vec![spec]).await;

    let health = wait_for(&hub, "two restarts", |h| {
        h.child("flaky")
            .is_some_and(|c| c.status == ChildStatus::Running && c.restarts == 2)
    })
    .await;
    assert!(health.root_running);
    assert!(health.is_healthy());
    let child = health.child("flaky").unwrap();
    assert!(
        child
            .last_failure
            .as_deref()
            .unwrap()
            .contains("injected panic"),
        "{child:?}"
    );
    assert_eq!(counts.starts(), 3);

    // Graceful stop reaches the child: its post_stop runs.
    stop_promptly(hub).await;
    assert_eq!(counts.stops(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_returning_an_error_is_restarted() {
    let (spec, counts) = flaky("erring", Fault::Error, 1);
    let hub = start(vec![spec]).await;
    let health = wait_for(&hub, "one restart", |h| {
        h.child("erring")
            .is_some_and(|c| c.status == ChildStatus::Running && c.restarts == 1)
    })
    .await;
    assert!(
        health.children[0]
            .last_failure
            .as_deref()
            .unwrap()
            .contains("injected error")
    );
    assert_eq!(counts.starts(), 2);
    stop_promptly(hub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_on_a_crash_loop_without_touching_siblings() {
    let (doomed, doomed_counts) = flaky("doomed", Fault::Panic, u32::MAX);
    let (steady, steady_counts) = flaky("steady", Fault::Panic, 0);
    let hub = start(vec![doomed, steady]).await;

    let health = wait_for(&hub, "doomed to be given up", |h| {
        h.child("doomed")
            .is_some_and(|c| c.status == ChildStatus::Failed)
    })
    .await;
    let doomed = health.child("doomed").unwrap();
    assert_eq!(doomed.restarts, 3);
    assert!(
        doomed
            .last_failure
            .as_deref()
            .unwrap()
            .contains("injected panic")
    );
    let steady = health.child("steady").unwrap();
    assert_eq!(steady.status, ChildStatus::Running);
    assert_eq!(steady.restarts, 0);
    assert!(health.root_running);
    assert!(!health.is_healthy());

    // Given up means given up: no further starts, and the sibling was never restarted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(doomed_counts.starts(), 4);
    assert_eq!(steady_counts.starts(), 1);
    assert_eq!(
        hub.health().child("doomed").unwrap().status,
        ChildStatus::Failed
    );
    assert!(hub.health().root_running);

    stop_promptly(hub).await;
    assert_eq!(steady_counts.stops(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_cannot_start_goes_through_the_same_policy() {
    let (spec, counts) = flaky("unstartable", Fault::Start, u32::MAX);
    let hub = start(vec![spec]).await;
    let health = wait_for(&hub, "unstartable to be given up", |h| {
        h.child("unstartable")
            .is_some_and(|c| c.status == ChildStatus::Failed)
    })
    .await;
    let child = health.child("unstartable").unwrap();
    assert_eq!(child.restarts, 3);
    assert!(
        child
            .last_failure
            .as_deref()
            .unwrap()
            .contains("injected start failure")
    );
    assert_eq!(counts.starts(), 4);
    assert!(health.root_running);
    stop_promptly(hub).await;
}
