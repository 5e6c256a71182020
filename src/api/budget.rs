//! The rate budget: one per API token, shared by every connection.
//!
//! Productive allows 100 requests per 10 seconds and 4,000 per 30 minutes
//! per token, and 10 per 30 seconds on report endpoints. Requests wait here
//! for room in every window instead of failing; a 429 from the API pauses
//! the whole budget, so all connections back off together.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// At most `limit` requests in any `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub period: Duration,
}

impl Window {
    pub const fn new(limit: u32, period: Duration) -> Window {
        Window { limit, period }
    }
}

/// The windows that apply to a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Windows every request counts against.
    pub general: Vec<Window>,
    /// Extra windows for `/reports/*` requests.
    pub reports: Vec<Window>,
}

impl Default for RateLimits {
    /// Productive's documented limits.
    fn default() -> RateLimits {
        RateLimits {
            general: vec![
                Window::new(100, Duration::from_secs(10)),
                Window::new(4000, Duration::from_secs(30 * 60)),
            ],
            reports: vec![Window::new(10, Duration::from_secs(30))],
        }
    }
}

impl RateLimits {
    /// No limits at all (tests that measure something else).
    pub fn unlimited() -> RateLimits {
        RateLimits {
            general: vec![],
            reports: vec![],
        }
    }
}

/// Whether a request is to a report endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Resource,
    Report,
}

impl RequestKind {
    pub fn of_path(path: &str) -> RequestKind {
        if path.starts_with("/reports/") {
            RequestKind::Report
        } else {
            RequestKind::Resource
        }
    }
}

#[derive(Debug)]
struct WindowState {
    window: Window,
    sent: VecDeque<Instant>,
}

impl WindowState {
    /// When the window has room again (`now` if it has room).
    fn ready_at(&mut self, now: Instant) -> Instant {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window.period)
        {
            self.sent.pop_front();
        }
        if (self.sent.len() as u32) < self.window.limit {
            return now;
        }
        // The oldest request that still counts leaves the window at this time.
        let idx = self.sent.len() - self.window.limit as usize;
        self.sent[idx] + self.window.period
    }
}

#[derive(Debug)]
struct State {
    general: Vec<WindowState>,
    reports: Vec<WindowState>,
    paused_until: Option<Instant>,
}

/// A shared rate budget. Cheap to clone through `Arc`.
#[derive(Debug)]
pub struct RateBudget {
    state: Mutex<State>,
    /// Extra spacing kept on every window, so clock skew between us and the
    /// API does not turn an exactly full window into a 429.
    margin: Duration,
}

impl RateBudget {
    pub fn new(limits: &RateLimits) -> RateBudget {
        let states = |ws: &[Window]| {
            ws.iter()
                .map(|&window| WindowState {
                    window,
                    sent: VecDeque::new(),
                })
                .collect()
        };
        RateBudget {
            state: Mutex::new(State {
                general: states(&limits.general),
                reports: states(&limits.reports),
                paused_until: None,
            }),
            margin: Duration::from_millis(20),
        }
    }

    /// Waits until a request of `kind` fits every window, then counts it.
    /// Returns how long it waited.
    pub async fn acquire(&self, kind: RequestKind) -> Duration {
        let start = Instant::now();
        loop {
            let wait_until = {
                let mut state = self.state.lock().expect("budget lock is never poisoned");
                let now = Instant::now();
                let mut ready = state.paused_until.filter(|t| *t > now).unwrap_or(now);
                for w in state.general.iter_mut() {
                    ready = ready.max(w.ready_at(now));
                }
                if kind == RequestKind::Report {
                    for w in state.reports.iter_mut() {
                        ready = ready.max(w.ready_at(now));
                    }
                }
                if ready <= now {
                    for w in state.general.iter_mut() {
                        w.sent.push_back(now);
                    }
                    if kind == RequestKind::Report {
                        for w in state.reports.iter_mut() {
                            w.sent.push_back(now);
                        }
                    }
                    return now.duration_since(start);
                }
                ready + self.margin
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }

    /// Holds every request back until `until` (after a 429).
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.state.lock().expect("budget lock is never poisoned");
        if state.paused_until.is_none_or(|t| t < until) {
            state.paused_until = Some(until);
        }
    }
}

/// The process-wide budget for one API base URL and token: every
/// connection that uses the token shares it.
pub fn shared_budget(base_url: &str, token: &str, limits: &RateLimits) -> Arc<RateBudget> {
    static BUDGETS: OnceLock<Mutex<HashMap<u64, Arc<RateBudget>>>> = OnceLock::new();
    // Key on a hash so the token itself is not kept in another place.
    let mut hasher = DefaultHasher::new();
    (base_url, token).hash(&mut hasher);
    let key = hasher.finish();
    let mut map = BUDGETS
        .get_or_init(Default::default)
        .lock()
        .expect("budget map lock");
    map.entry(key)
        .or_insert_with(|| Arc::new(RateBudget::new(limits)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_room_in_the_window() {
        let limits = RateLimits {
            general: vec![Window::new(3, Duration::from_secs(10))],
            reports: vec![Window::new(1, Duration::from_secs(30))],
        };
        let budget = RateBudget::new(&limits);
        for _ in 0..3 {
            assert_eq!(budget.acquire(RequestKind::Resource).await, Duration::ZERO);
        }
        let waited = budget.acquire(RequestKind::Resource).await;
        assert!(waited >= Duration::from_secs(10), "{waited:?}");
        assert!(waited < Duration::from_secs(11), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn reports_have_their_own_window() {
        let limits = RateLimits {
            general: vec![Window::new(100, Duration::from_secs(10))],
            reports: vec![Window::new(1, Duration::from_secs(30))],
        };
        let budget = RateBudget::new(&limits);
        budget.acquire(RequestKind::Report).await;
        assert_eq!(budget.acquire(RequestKind::Resource).await, Duration::ZERO);
        assert!(budget.acquire(RequestKind::Report).await >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request() {
        let budget = RateBudget::new(&RateLimits::unlimited());
        budget.pause_until(Instant::now() + Duration::from_secs(5));
        assert!(budget.acquire(RequestKind::Resource).await >= Duration::from_secs(5));
    }

    #[test]
    fn one_budget_per_token() {
        let limits = RateLimits::default();
        let a = shared_budget("http://x", "t1", &limits);
        let b = shared_budget("http://x", "t1", &limits);
        let c = shared_budget("http://x", "t2", &limits);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
