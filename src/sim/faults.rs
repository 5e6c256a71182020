//! Injected trouble: latency, server errors, broken and slow bodies.
//!
//! Everything random comes from one ChaCha RNG seeded from
//! [`crate::sim::SimOptions::seed`], so a run with the same seed and the
//! same request sequence fails the same way. Tests that need exact control
//! queue faults with [`crate::sim::SimServer::fail_next`]; queued faults
//! are used before any random draw.
//!
//! Status faults (500/502/503) answer before the request is handled, so
//! nothing is written. Body faults corrupt the answer of a request that was
//! handled (a write did happen), and only apply to answers with a body.
//! Latency is spent before the request is handled: a client that times out
//! during it hangs up before anything is written.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Delay added before each request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// Always added.
    pub fixed_ms: u64,
    /// Up to this much more, drawn uniformly per request.
    pub jitter_ms: u64,
}

impl Latency {
    pub fn new(fixed_ms: u64, jitter_ms: u64) -> Latency {
        Latency {
            fixed_ms,
            jitter_ms,
        }
    }
}

/// One kind of injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status instead of handling the request: 500 with a
    /// JSON:API error body, other statuses with a small HTML page such as a
    /// proxy in front of the API would send.
    Status(u16),
    /// Send the headers and half the body, then break the connection (an
    /// answer without a body, such as a `DELETE`'s 204, is not sent at all).
    DropConnection,
    /// A complete body that is not valid JSON.
    MalformedJson,
    /// The first half of the body, with a matching `Content-Length`.
    TruncatedJson,
    /// The body in ten chunks spread over [`Faults::slow_body`].
    SlowBody,
    /// Close the connection without a complete answer. With `handled` the
    /// request is handled first (a write happens), without it nothing is.
    HangUp { handled: bool },
    /// Valid JSON of the wrong shape: a single record's `data` object
    /// becomes a one-element array, a list's `data` array its first
    /// element (or an empty object), as a misrouted proxy answer would.
    WrongType,
}

/// Shares of requests that fail, each in `0.0..=1.0` (their sum should
/// stay at or below 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// 500, 502 or 503, equally likely.
    pub server_error_rate: f64,
    pub drop_rate: f64,
    pub malformed_rate: f64,
    pub truncated_rate: f64,
    pub slow_rate: f64,
    /// How long a slow body takes from first to last byte.
    pub slow_body: Duration,
}

impl Faults {
    /// No random faults.
    pub fn none() -> Faults {
        Faults {
            server_error_rate: 0.0,
            drop_rate: 0.0,
            malformed_rate: 0.0,
            truncated_rate: 0.0,
            slow_rate: 0.0,
            slow_body: Duration::from_millis(500),
        }
    }
}

impl Default for Faults {
    fn default() -> Faults {
        Faults::none()
    }
}

/// The mutable fault settings of a running server.
#[derive(Debug)]
pub struct FaultPlan {
    rng: ChaCha8Rng,
    pub faults: Faults,
    pub latency: Latency,
    forced: VecDeque<FaultKind>,
    /// Faults for the next requests of one method (`POST`), used before
    /// [`FaultPlan::forced`].
    /// `None` lets a request pass.
    forced_by_method: HashMap<String, VecDeque<Option<FaultKind>>>,
}

impl FaultPlan {
    pub fn new(seed: u64, faults: Faults, latency: Latency) -> FaultPlan {
        FaultPlan {
            rng: ChaCha8Rng::seed_from_u64(seed),
            faults,
            latency,
            forced: VecDeque::new(),
            forced_by_method: HashMap::new(),
        }
    }

    /// Queues `kind` for the next `count` requests.
    pub fn fail_next(&mut self, count: usize, kind: FaultKind) {
        self.forced.extend(std::iter::repeat_n(kind, count));
    }

    /// Lets the next `skip` requests with `method` (`POST`) pass, then
    /// queues `kind` for `count` more, so one write of several can fail
    /// while the reads around it pass.
    pub fn fail_method(&mut self, method: &str, skip: usize, count: usize, kind: FaultKind) {
        let queue = self
            .forced_by_method
            .entry(method.to_ascii_uppercase())
            .or_default();
        queue.extend(std::iter::repeat_n(None, skip));
        queue.extend(std::iter::repeat_n(Some(kind), count));
    }

    /// The delay and fault of the next request, which has `method`.
    pub fn next_request(&mut self, method: &str) -> (Duration, Option<FaultKind>) {
        let jitter = match self.latency.jitter_ms {
            0 => 0,
            j => self.rng.gen_range(0..=j),
        };
        let delay = Duration::from_millis(self.latency.fixed_ms + jitter);
        if let Some(queued) = self
            .forced_by_method
            .get_mut(method)
            .and_then(VecDeque::pop_front)
        {
            return (delay, queued);
        }
        if let Some(kind) = self.forced.pop_front() {
            return (delay, Some(kind));
        }
        let f = self.faults;
        let draw: f64 = self.rng.r#gen();
        let mut edge = f.server_error_rate;
        let fault = if draw < edge {
            let statuses = [500, 502, 503];
            Some(FaultKind::Status(
                statuses[self.rng.gen_range(0..statuses.len())],
            ))
        } else {
            let mut pick = None;
            for (rate, kind) in [
                (f.drop_rate, FaultKind::DropConnection),
                (f.malformed_rate, FaultKind::MalformedJson),
                (f.truncated_rate, FaultKind::TruncatedJson),
                (f.slow_rate, FaultKind::SlowBody),
            ] {
                edge += rate;
                if draw < edge {
                    pick = Some(kind);
                    break;
                }
            }
            pick
        };
        (delay, fault)
    }

    /// A fresh `x-request-id`, shaped like a version-4 UUID.
    pub fn request_id(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.r#gen();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }
}

/// The body of an answer with a body fault, and the `Content-Length` to
/// announce (none for streamed bodies).
pub fn faulty_body(kind: FaultKind, body: Vec<u8>, slow_body: Duration) -> (Body, Option<usize>) {
    let half = body.len() / 2;
    match kind {
        FaultKind::DropConnection => {
            let first = Bytes::copy_from_slice(&body[..half]);
            // The pause lets the server flush the headers and the first half
            // before the error makes it close the connection.
            let stream = futures::stream::unfold(Some(Some(first)), |state| async move {
                match state? {
                    Some(first) => Some((Ok(first), Some(None))),
                    None => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let error = std::io::Error::other("simulated dropped connection");
                        Some((Err(error), None))
                    }
                }
            });
            (Body::from_stream(stream), None)
        }
        FaultKind::TruncatedJson => {
            let truncated = body[..half].to_vec();
            let len = truncated.len();
            (Body::from(truncated), Some(len))
        }
        FaultKind::MalformedJson => {
            let mut broken = body;
            // `{,"data":...}`: right length, wrong grammar.
            broken.insert(1.min(broken.len()), b',');
            let len = broken.len();
            (Body::from(broken), Some(len))
        }
        FaultKind::SlowBody => {
            let pieces = 10;
            let size = body.len().div_ceil(pieces).max(1);
            let chunks: Vec<Bytes> = body.chunks(size).map(Bytes::copy_from_slice).collect();
            let pause = slow_body / pieces as u32;
            let stream = futures::stream::unfold(chunks.into_iter(), move |mut rest| async move {
                let chunk = rest.next()?;
                tokio::time::sleep(pause).await;
                Some((Ok::<_, std::io::Error>(chunk), rest))
            });
            (Body::from_stream(stream), None)
        }
        FaultKind::HangUp { .. } => {
            let stream = futures::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("simulated hang-up"))
            });
            (Body::from_stream(stream), None)
        }
        FaultKind::WrongType => {
            let reshaped = reshape(&body).unwrap_or(body);
            let len = reshaped.len();
            (Body::from(reshaped), Some(len))
        }
        FaultKind::Status(_) => {
            let len = body.len();
            (Body::from(body), Some(len))
        }
    }
}

/// `body` with its top-level `data` turned from object to array or back;
/// `None` when it is not a JSON object.
fn reshape(body: &[u8]) -> Option<Vec<u8>> {
    let mut doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let data = doc.as_object_mut()?.get_mut("data")?;
    *data = match data.take() {
        serde_json::Value::Array(items) => items
            .into_iter()
            .next()
            .unwrap_or_else(|| serde_json::json!({})),
        other => serde_json::Value::Array(vec![other]),
    };
    serde_json::to_vec(&doc).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let faults = Faults {
            server_error_rate: 0.3,
            drop_rate: 0.3,
            ..Faults::none()
        };
        let draws = |seed| {
            let mut plan = FaultPlan::new(seed, faults, Latency::new(5, 10));
            (0..50)
                .map(|_| plan.next_request("GET"))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let all = draws(7);
        assert!(
            all.iter()
                .any(|(_, f)| matches!(f, Some(FaultKind::Status(_))))
        );
        assert!(all.iter().any(|(_, f)| f.is_none()));
        assert!(
            all.iter()
                .all(|(d, _)| *d >= Duration::from_millis(5) && *d <= Duration::from_millis(15))
        );
    }

    #[test]
    fn queued_faults_come_first() {
        let mut plan = FaultPlan::new(1, Faults::none(), Latency::default());
        plan.fail_next(2, FaultKind::Status(503));
        plan.fail_method("post", 1, 1, FaultKind::MalformedJson);
        assert_eq!(plan.next_request("GET").1, Some(FaultKind::Status(503)));
        assert_eq!(plan.next_request("POST").1, None, "skipped");
        assert_eq!(plan.next_request("POST").1, Some(FaultKind::MalformedJson));
        assert_eq!(plan.next_request("POST").1, Some(FaultKind::Status(503)));
        assert_eq!(plan.next_request("GET").1, None);
    }

    #[test]
    fn wrong_type_swaps_object_and_array() {
        let one = reshape(br#"{"data":{"id":"1"}}"#).unwrap();
        assert_eq!(one, br#"{"data":[{"id":"1"}]}"#);
        let list = reshape(br#"{"data":[{"id":"1"},{"id":"2"}],"meta":{}}"#).unwrap();
        assert_eq!(list, br#"{"data":{"id":"1"},"meta":{}}"#);
        assert_eq!(reshape(b"<html>"), None);
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let mut plan = FaultPlan::new(1, Faults::none(), Latency::default());
        let id = plan.request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, plan.request_id());
    }
}
