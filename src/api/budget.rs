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
use tracing::warn;

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

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.period.as_secs();
        match secs {
            0 => write!(f, "{} per {} ms", self.limit, self.period.as_millis()),
            s if s % 3600 == 0 => write!(f, "{} per {} h", self.limit, s / 3600),
            s if s % 60 == 0 => write!(f, "{} per {} min", self.limit, s / 60),
            s => write!(f, "{} per {s} s", self.limit),
        }
    }
}

/// A wait for room this long is logged: the statement behind it may seem
/// stuck otherwise (the 30-minute window can hold requests for minutes).
const LONG_WAIT: Duration = Duration::from_secs(5);

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
    /// When each finished request ended, oldest first.
    ended: VecDeque<Instant>,
    /// Requests sent and not yet answered: they count until they end.
    in_flight: u32,
}

impl WindowState {
    /// When the window has room again: `Some(now)` if it has room, `None`
    /// when only a request in flight ending can make room.
    fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        while self
            .ended
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window.period)
        {
            self.ended.pop_front();
        }
        let counted = self.ended.len() + self.in_flight as usize;
        if counted < self.window.limit as usize {
            return Some(now);
        }
        // The oldest ended request that must leave the window first.
        let idx = counted - self.window.limit as usize;
        self.ended.get(idx).map(|t| *t + self.window.period)
    }
}

#[derive(Debug)]
struct State {
    general: Vec<WindowState>,
    reports: Vec<WindowState>,
    paused_until: Option<Instant>,
    /// The end of the last wait that was logged: requests queued behind
    /// the same full window are one wait, logged once.
    logged_until: Option<Instant>,
}

impl State {
    /// Whether a wait from `now` until `until` is worth a warning: it is
    /// long, and no warning already covers it.
    fn warn_of_wait(&mut self, now: Instant, until: Instant) -> bool {
        if until.saturating_duration_since(now) < LONG_WAIT
            || self.logged_until.is_some_and(|t| now < t)
        {
            return false;
        }
        self.logged_until = Some(until);
        true
    }

    fn windows(&mut self, kind: RequestKind) -> impl Iterator<Item = &mut WindowState> {
        let reports = match kind {
            RequestKind::Report => &mut self.reports[..],
            RequestKind::Resource => &mut [],
        };
        self.general.iter_mut().chain(reports.iter_mut())
    }
}

/// A shared rate budget. Cheap to clone through `Arc`.
///
/// A request counts against a window from the moment it is let through
/// until one period after its answer arrived. The API counts it from when
/// it arrived, which lies in between, so however long the network or a busy
/// machine delays a request, our count of a window is never below the
/// API's, and a full window waits here instead of drawing a 429.
#[derive(Debug)]
pub struct RateBudget {
    state: Mutex<State>,
    /// Wakes requests waiting for one in flight to end.
    ended: tokio::sync::Notify,
    /// Extra spacing kept on every window, so clock skew between us and the
    /// API does not turn an exactly full window into a 429.
    margin: Duration,
}

/// A request let through by the budget; it counts as in flight until
/// dropped.
#[derive(Debug)]
#[must_use = "the request counts as in flight until the slot is dropped"]
pub struct Slot<'a> {
    budget: &'a RateBudget,
    kind: RequestKind,
    waited: Duration,
}

impl Slot<'_> {
    /// How long the request waited for room.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.budget.end(self.kind);
    }
}

impl RateBudget {
    pub fn new(limits: &RateLimits) -> RateBudget {
        let states = |ws: &[Window]| {
            ws.iter()
                .map(|&window| WindowState {
                    window,
                    ended: VecDeque::new(),
                    in_flight: 0,
                })
                .collect()
        };
        RateBudget {
            state: Mutex::new(State {
                general: states(&limits.general),
                reports: states(&limits.reports),
                paused_until: None,
                logged_until: None,
            }),
            ended: tokio::sync::Notify::new(),
            margin: Duration::from_millis(20),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a request of `kind` fits every window, then counts it as
    /// in flight until the returned slot is dropped.
    pub async fn acquire(&self, kind: RequestKind) -> Slot<'_> {
        let start = Instant::now();
        loop {
            // Registered before looking, so an end in between is not missed.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let wait_until = {
                let mut state = self.lock();
                let now = Instant::now();
                let mut ready = Some(state.paused_until.filter(|t| *t > now).unwrap_or(now));
                for w in state.windows(kind) {
                    ready = match (ready, w.ready_at(now)) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                }
                if ready.is_some_and(|t| t <= now) {
                    for w in state.windows(kind) {
                        w.in_flight += 1;
                    }
                    return Slot {
                        budget: self,
                        kind,
                        waited: now.duration_since(start),
                    };
                }
                let wait_until = ready.map(|t| t + self.margin);
                if wait_until.is_some_and(|t| state.warn_of_wait(now, t)) {
                    let full: Vec<String> = state
                        .windows(kind)
                        .filter_map(|w| {
                            (w.ready_at(now) != Some(now)).then(|| w.window.to_string())
                        })
                        .collect();
                    warn!(
                        wait_s = wait_until.map_or(0, |t| t.duration_since(now).as_secs()),
                        windows = %full.join(", "),
                        "requests wait for room under the API's rate limits"
                    );
                }
                wait_until
            };
            match wait_until {
                Some(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = ended => {}
                    }
                }
                None => ended.await,
            }
        }
    }

    /// A request of `kind` got its answer (or was abandoned).
    fn end(&self, kind: RequestKind) {
        {
            let mut state = self.lock();
            let now = Instant::now();
            for w in state.windows(kind) {
                w.in_flight = w.in_flight.saturating_sub(1);
                w.ended.push_back(now);
            }
        }
        self.ended.notify_waiters();
    }

    /// Holds every request back until `until` (after a 429).
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.lock();
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

    #[test]
    fn a_long_wait_is_logged_once_for_every_request_queued_behind_it() {
        let mut state = State {
            general: Vec::new(),
            reports: Vec::new(),
            paused_until: None,
            logged_until: None,
        };
        let now = Instant::now();
        let s = Duration::from_secs(1);
        assert!(
            !state.warn_of_wait(now, now + 4 * s),
            "a short wait is not logged"
        );
        assert!(state.warn_of_wait(now, now + 8 * s));
        assert!(!state.warn_of_wait(now, now + 8 * s), "the same wait again");
        assert!(
            !state.warn_of_wait(now + 2 * s, now + 9 * s),
            "queued behind it"
        );
        assert!(
            state.warn_of_wait(now + 8 * s, now + 20 * s),
            "a new wait after the logged one ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_room_in_the_window() {
        let limits = RateLimits {
            general: vec![Window::new(3, Duration::from_secs(10))],
            reports: vec![Window::new(1, Duration::from_secs(30))],
        };
        let budget = RateBudget::new(&limits);
        for _ in 0..3 {
            assert_eq!(
                budget.acquire(RequestKind::Resource).await.waited(),
                Duration::ZERO
            );
        }
        let waited = budget.acquire(RequestKind::Resource).await.waited();
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
        drop(budget.acquire(RequestKind::Report).await);
        assert_eq!(
            budget.acquire(RequestKind::Resource).await.waited(),
            Duration::ZERO
        );
        assert!(budget.acquire(RequestKind::Report).await.waited() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request() {
        let budget = RateBudget::new(&RateLimits::unlimited());
        budget.pause_until(Instant::now() + Duration::from_secs(5));
        assert!(budget.acquire(RequestKind::Resource).await.waited() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_counts_until_one_period_after_its_answer() {
        let limits = RateLimits {
            general: vec![Window::new(1, Duration::from_secs(10))],
            reports: vec![],
        };
        let budget = Arc::new(RateBudget::new(&limits));
        let slow = budget.acquire(RequestKind::Resource).await;
        // The slow request is answered after 30 s: the window stays full
        // until 10 s after that, not 10 s after it was sent.
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                drop(budget.acquire(RequestKind::Resource).await);
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!waiter.is_finished());
        drop(slow);
        // Answered at 30 s, so room again at 40 s.
        let waited = waiter.await.expect("joins");
        assert!(waited >= Duration::from_secs(40), "{waited:?}");
        assert!(waited < Duration::from_secs(41), "{waited:?}");
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
