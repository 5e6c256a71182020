//! Rate limits: sliding windows of request times per auth token.
//!
//! The real limits (fact sheet §8) are 100 requests per 10 seconds and
//! 4,000 per 30 minutes, and 10 per 30 seconds on `/reports/*`. What the
//! quota is keyed on is unconfirmed; the simulator keys it on the
//! `X-Auth-Token` value. A refused request does not count against the
//! window, and the `Retry-After` it carries is the whole number of seconds
//! until the oldest request of the full window leaves it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// At most `max_requests` in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_requests: usize,
    pub window: Duration,
}

impl Limit {
    pub fn new(max_requests: usize, window: Duration) -> Limit {
        Limit {
            max_requests,
            window,
        }
    }
}

/// The limits the simulator enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Limits on every request.
    pub general: Vec<Limit>,
    /// Extra limits on paths under `/reports/`.
    pub reports: Vec<Limit>,
}

impl RateLimits {
    /// The limits of the real API.
    pub fn productive() -> RateLimits {
        RateLimits {
            general: vec![
                Limit::new(100, Duration::from_secs(10)),
                Limit::new(4_000, Duration::from_secs(30 * 60)),
            ],
            reports: vec![Limit::new(10, Duration::from_secs(30))],
        }
    }

    /// No limits at all.
    pub fn disabled() -> RateLimits {
        RateLimits {
            general: Vec::new(),
            reports: Vec::new(),
        }
    }

    /// One general limit of `max_requests` per `window`, as tests want it.
    pub fn per_window(max_requests: usize, window: Duration) -> RateLimits {
        RateLimits {
            general: vec![Limit::new(max_requests, window)],
            reports: Vec::new(),
        }
    }
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits::productive()
    }
}

/// The request history the limits are checked against.
#[derive(Debug, Default)]
pub struct RateLimiter {
    limits: RateLimits,
    /// Request times per token; report requests are also in `reports`.
    general: HashMap<String, VecDeque<Instant>>,
    reports: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            general: HashMap::new(),
            reports: HashMap::new(),
        }
    }

    /// Replaces the limits, keeping the history.
    pub fn set_limits(&mut self, limits: RateLimits) {
        self.limits = limits;
    }

    /// Records a request at `now`, or refuses it with the seconds to wait.
    pub fn check(&mut self, token: &str, is_report: bool, now: Instant) -> Result<(), u64> {
        let mut wait = None;
        let mut check = |history: &VecDeque<Instant>, limits: &[Limit]| {
            for limit in limits {
                let in_window: Vec<&Instant> = history
                    .iter()
                    .filter(|t| now.duration_since(**t) < limit.window)
                    .collect();
                if in_window.len() >= limit.max_requests {
                    // The oldest request inside the window frees a slot.
                    let oldest = in_window
                        .get(in_window.len() - limit.max_requests)
                        .map_or(now, |t| **t);
                    let free_at = oldest + limit.window;
                    let secs = free_at.saturating_duration_since(now).as_secs_f64().ceil();
                    let secs = (secs as u64).max(1);
                    wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
                }
            }
        };
        let empty = VecDeque::new();
        check(
            self.general.get(token).unwrap_or(&empty),
            &self.limits.general,
        );
        if is_report {
            check(
                self.reports.get(token).unwrap_or(&empty),
                &self.limits.reports,
            );
        }
        if let Some(secs) = wait {
            return Err(secs);
        }

        let longest = |limits: &[Limit]| limits.iter().map(|l| l.window).max();
        if let Some(keep) = longest(&self.limits.general) {
            remember(
                self.general.entry(token.to_string()).or_default(),
                now,
                keep,
            );
        }
        if is_report && let Some(keep) = longest(&self.limits.reports) {
            remember(
                self.reports.entry(token.to_string()).or_default(),
                now,
                keep,
            );
        }
        Ok(())
    }
}

/// Adds `now` and forgets requests older than the longest window.
fn remember(history: &mut VecDeque<Instant>, now: Instant, keep: Duration) {
    history.push_back(now);
    while history
        .front()
        .is_some_and(|t| now.duration_since(*t) >= keep)
    {
        history.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_refuses_until_the_oldest_request_leaves() {
        let mut limiter = RateLimiter::new(RateLimits::per_window(2, Duration::from_secs(10)));
        let start = Instant::now();
        assert_eq!(limiter.check("t", false, start), Ok(()));
        assert_eq!(
            limiter.check("t", false, start + Duration::from_secs(3)),
            Ok(())
        );
        assert_eq!(
            limiter.check("t", false, start + Duration::from_secs(4)),
            Err(6)
        );
        // Another token has its own quota.
        assert_eq!(
            limiter.check("u", false, start + Duration::from_secs(4)),
            Ok(())
        );
        assert_eq!(
            limiter.check("t", false, start + Duration::from_secs(10)),
            Ok(())
        );
    }

    #[test]
    fn reports_have_their_own_tighter_window() {
        let mut limits = RateLimits::disabled();
        limits.reports = vec![Limit::new(1, Duration::from_secs(30))];
        let mut limiter = RateLimiter::new(limits);
        let now = Instant::now();
        assert_eq!(limiter.check("t", true, now), Ok(()));
        assert_eq!(limiter.check("t", false, now), Ok(()));
        assert_eq!(limiter.check("t", true, now), Err(30));
    }

    #[test]
    fn disabled_limits_never_refuse() {
        let mut limiter = RateLimiter::new(RateLimits::disabled());
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(limiter.check("t", true, now), Ok(()));
        }
    }
}
