//! [`Hub`]: the handle through which the rest of omnihub starts, inspects and stops the tree.

use std::time::Duration;

use omnihub_store::DynStore;
use ractor::concurrency::JoinHandle;
use ractor::{ACTIVE_STATES, Actor, ActorRef};
use tokio::sync::watch;

use crate::health::HubHealth;
use crate::janitor::{self, Janitor, JanitorArgs};
use crate::restart::RestartPolicy;
use crate::supervisor::{ChildSpec, Root, RootArgs, RootMsg, supervised};

#[derive(Clone, Debug)]
pub struct HubConfig {
    /// How often the janitor deletes expired sessions, invites and reset tokens.
    pub janitor_interval: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            janitor_interval: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid hub configuration: {0}")]
    Config(&'static str),
    /// The root supervisor did not start. Carries ractor's message as text so ractor's types
    /// stay inside this crate.
    #[error("the actor tree did not start: {0}")]
    Start(String),
}

/// Handle to the running tree. Dropping it without [`Hub::stop`] still asks the tree to stop,
/// but does not wait for it.
pub struct Hub {
    root: ActorRef<RootMsg>,
    /// Taken by `stop`; still present on drop means nobody waited for the tree.
    join: Option<JoinHandle<()>>,
    health: watch::Receiver<HubHealth>,
}

impl Hub {
    /// Starts the root supervisor and its children. Call it from the main multi-threaded
    /// runtime, not from inside an actix handler (those run on per-worker single-threaded
    /// runtimes, and the tree would die with that worker).
    pub async fn start(store: DynStore, config: HubConfig) -> Result<Hub, HubError> {
        if config.janitor_interval.is_zero() {
            return Err(HubError::Config("janitor_interval must be above zero"));
        }
        let interval = config.janitor_interval;
        let janitor = supervised(janitor::NAME, move || {
            let args = JanitorArgs {
                store: store.clone(),
                interval,
            };
            (Janitor, args)
        });
        Hub::start_with(vec![janitor], RestartPolicy::default()).await
    }

    /// Starts a root over exactly these children; `start` uses it, and tests use it to put
    /// misbehaving children under a real root.
    pub(crate) async fn start_with(
        children: Vec<Box<dyn ChildSpec>>,
        policy: RestartPolicy,
    ) -> Result<Hub, HubError> {
        let (health_tx, health) = watch::channel(HubHealth {
            root_running: false,
            children: Vec::new(),
        });
        let args = RootArgs {
            children,
            policy,
            health: health_tx,
        };
        let (root, join) = Actor::spawn(None, Root, args)
            .await
            .map_err(|err| HubError::Start(err.to_string()))?;
        tracing::info!("actor tree started");
        Ok(Hub {
            root,
            join: Some(join),
            health,
        })
    }

    /// Stops the whole tree and waits until it has stopped: children get a few seconds to
    /// finish their current message, then whatever is left is killed.
    pub async fn stop(mut self) {
        self.root.stop(Some("hub stopped".to_string()));
        if let Some(join) = self.join.take()
            && let Err(err) = join.await
        {
            tracing::warn!(error = %err, "root supervisor task ended abnormally");
        }
        tracing::info!("actor tree stopped");
    }

    /// Which children run, how often each was restarted, and which were given up on.
    pub fn health(&self) -> HubHealth {
        let mut health = self.health.borrow().clone();
        // The root's own liveness comes from ractor, not from the root: a dead root cannot
        // report its own death. "Active" rather than `Running`: ractor returns from spawn
        // before the actor's task has run post_start and flipped it from `Starting`.
        health.root_running = ACTIVE_STATES.contains(&self.root.get_status());
        health
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if self.join.is_some() {
            self.root.stop(Some("hub dropped".to_string()));
        }
    }
}
