//! Feature `metrics`: the router's measurements through the [`metrics`] facade, named after the
//! OpenTelemetry GenAI conventions and labelled by provider, model and route. No exporter is
//! installed: the application picks one (Prometheus, StatsD, …), or none, and then these cost
//! almost nothing.
//!
//! | name | kind | unit | labels beyond provider, model, route |
//! |---|---|---|---|
//! | `gen_ai.client.operation.duration` | histogram | s | `modelgate.stream` |
//! | `gen_ai.client.operation.time_to_first_chunk` | histogram | s | |
//! | `gen_ai.client.token.usage` | histogram | {token} | `gen_ai.token.type` (`input`, `output`) |
//! | `modelgate.client.cost` | counter | nano-USD (1e-9 $) | |
//! | `modelgate.client.errors` | counter | {error} | `error.type` |

use tokio::time::Duration;

use super::attempt::{Answer, Call, Slot};
use crate::error::Error;
use crate::state::usd_to_nanos;
use crate::types::Usage;

const PROVIDER: &str = "gen_ai.provider.name";
const MODEL: &str = "gen_ai.request.model";
const ROUTE: &str = "modelgate.route";

/// Labels of one target's measurements.
#[derive(Debug, Clone)]
pub(crate) struct Labels {
    provider: String,
    model: String,
    route: String,
}

impl Labels {
    pub(crate) fn new(slot: &Slot, route: &str) -> Self {
        Labels {
            provider: slot.target.provider_name().to_owned(),
            model: slot.target.model.clone(),
            route: route.to_owned(),
        }
    }

    fn base(&self) -> [(&'static str, String); 3] {
        [
            (PROVIDER, self.provider.clone()),
            (MODEL, self.model.clone()),
            (ROUTE, self.route.clone()),
        ]
    }

    /// A finished answer: its usage and cost.
    pub(crate) fn answered(&self, usage: Option<&Usage>, cost: Option<f64>) {
        if let Some(u) = usage {
            for (kind, n) in [("input", u.input_tokens), ("output", u.output_tokens)] {
                let mut labels = self.base().to_vec();
                labels.push(("gen_ai.token.type", kind.to_owned()));
                metrics::histogram!("gen_ai.client.token.usage", &labels).record(n as f64);
            }
        }
        if let Some(cost) = cost {
            metrics::counter!("modelgate.client.cost", &self.base()).increment(usd_to_nanos(cost));
        }
    }

    /// A stream's whole duration, once it ended.
    pub(crate) fn stream_finished(&self, took: Duration) {
        let mut labels = self.base().to_vec();
        labels.push(("modelgate.stream", "true".to_owned()));
        metrics::histogram!("gen_ai.client.operation.duration", &labels).record(took.as_secs_f64());
    }

    pub(crate) fn error(&self, err: &Error) {
        let mut labels = self.base().to_vec();
        labels.push(("error.type", err.kind().as_str().to_owned()));
        metrics::counter!("modelgate.client.errors", &labels).increment(1);
    }
}

/// One attempt's measurements: a chat call's duration, usage and cost; a stream's time to first
/// chunk (its duration and usage follow when it ends); an error by kind.
pub(crate) fn attempt(
    labels: &Labels,
    call: Call,
    latency: Duration,
    result: &Result<Answer, Error>,
    cost: Option<f64>,
) {
    match result {
        Ok(Answer::Chat(r)) => {
            let mut l = labels.base().to_vec();
            l.push(("modelgate.stream", "false".to_owned()));
            metrics::histogram!("gen_ai.client.operation.duration", &l)
                .record(latency.as_secs_f64());
            labels.answered(r.usage.as_ref(), cost);
        }
        Ok(Answer::Stream(_)) => {
            debug_assert_eq!(call, Call::Stream);
            metrics::histogram!(
                "gen_ai.client.operation.time_to_first_chunk",
                &labels.base()
            )
            .record(latency.as_secs_f64());
        }
        Err(err) => labels.error(err),
    }
}
