//! In-process cost per request of each server variant, for `--layers`: the application's service
//! called directly through actix-web's test harness, with no sockets, no HTTP parsing or encoding
//! and no load generator competing for the machine. What is left is the CPU each layer adds, and
//! the best of several samples keeps other programs' noise out of it. A second pass repeats two
//! variants under a scoped subscriber that records nothing, which isolates what the request
//! span costs with omnihub's default log subscriber.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use actix_web::test::{TestRequest, init_service};
use anyhow::{anyhow, bail};
use omnihub::AppState;
use serde_json::Value;
use tracing::instrument::WithSubscriber as _;
use tracing::subscriber::NoSubscriber;

use crate::apps::{self, PATH, Variant};

/// Calls per sample, and samples per variant (the best one counts).
const CALLS: u32 = 20_000;
const SAMPLES: usize = 7;

type Sample = Pin<Box<dyn Future<Output = anyhow::Result<Duration>>>>;
/// Runs `n` requests through one application and returns how long they took.
type Sampler = Box<dyn Fn(u32) -> Sample>;

/// One measured application.
pub struct Cost {
    pub label: String,
    pub variant: Variant,
    pub ns_per_request: f64,
}

/// Measures every variant (interleaved, so noise spreads evenly), then omnihub's middleware
/// and whole application again with logging off.
pub async fn measure(
    state: &AppState,
    body: &Arc<Value>,
    token: &str,
) -> anyhow::Result<Vec<Cost>> {
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))?;
    let logged = [
        Variant::Bare,
        Variant::Observe,
        Variant::Auth,
        Variant::Stack,
        Variant::Omnihub,
    ];
    let mut costs = Vec::new();
    // Logging off last: a scoped dispatcher changes tracing's cached interest for every
    // callsite, which would tax the runs after it.
    for (variants, silent) in [
        (&logged[..], false),
        (&[Variant::Observe, Variant::Omnihub][..], true),
    ] {
        let mut samplers: Vec<(Variant, Sampler)> = Vec::new();
        for &variant in variants {
            let sampler = apps::with_app!(variant, state, body, |make| {
                // Building an App fails only through async data factories, which none has.
                let service = init_service(make()).await;
                let bearer = bearer.clone();
                let request = move || {
                    TestRequest::get()
                        .uri(PATH)
                        .insert_header((AUTHORIZATION, bearer.clone()))
                        .to_request()
                };
                sampler(service, request, silent)
            });
            samplers.push((variant, sampler));
        }
        let mut best = vec![f64::INFINITY; samplers.len()];
        for (_, sampler) in &samplers {
            sampler(CALLS / 10).await?;
        }
        for _ in 0..SAMPLES {
            for (i, (_, sampler)) in samplers.iter().enumerate() {
                let took = sampler(CALLS).await?;
                best[i] = best[i].min(took.as_nanos() as f64 / f64::from(CALLS));
            }
        }
        for ((variant, _), ns) in samplers.iter().zip(best) {
            let label = if silent {
                format!("{} (logging off)", variant.label())
            } else {
                variant.label().to_string()
            };
            costs.push(Cost {
                label,
                variant: *variant,
                ns_per_request: ns,
            });
        }
    }
    Ok(costs)
}

/// `request` makes each request (generic, as actix-web does not re-export its request type).
fn sampler<S, R, B>(service: S, request: impl Fn() -> R + 'static, silent: bool) -> Sampler
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    R: 'static,
    B: 'static,
{
    let (service, request) = (Rc::new(service), Rc::new(request));
    Box::new(move |n| {
        let (service, request) = (service.clone(), request.clone());
        let run = async move {
            let started = Instant::now();
            for _ in 0..n {
                let response = service.call(request()).await.map_err(|e| anyhow!("{e}"))?;
                if response.status() != StatusCode::OK {
                    bail!("GET {PATH} answered {}", response.status());
                }
            }
            Ok(started.elapsed())
        };
        if silent {
            Box::pin(run.with_subscriber(NoSubscriber::default()))
        } else {
            Box::pin(run)
        }
    })
}
