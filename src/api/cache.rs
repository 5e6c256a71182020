//! A cache of API answers, shared by every client of one credential.
//!
//! Reads can be answered from here instead of the API when the session
//! asks for it (`SET productive.cache_ttl = '60s'`): list pages keyed by
//! their full request path (endpoint, filters, sort, includes, page) and
//! records by id. An answer is only reused while it is younger than the
//! reader's time to live, so each session (and each table) decides how
//! stale it accepts to be; the cache itself only bounds its size.
//!
//! One cache exists per API base URL, organization and token: sessions of
//! the same credential share answers, sessions of another token never see
//! them. Every write through a client empties the answers of the endpoint
//! it wrote to (whatever the write's outcome), so a session reads its own
//! writes. Values the API derives from other resources (a project's task
//! counts after a task is written) can stay stale until their time to live
//! runs out.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashlink::LinkedHashMap;

/// How big a cache may grow before the least recently used answers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Answers kept at most.
    pub max_entries: usize,
    /// Bytes of answer bodies kept at most; a single answer larger than a
    /// quarter of this is never kept.
    pub max_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> CacheLimits {
        CacheLimits {
            max_entries: 4_096,
            max_bytes: 128 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct Entry {
    body: Bytes,
    stored: Instant,
}

#[derive(Debug, Default)]
struct Entries {
    /// Least recently used first.
    map: LinkedHashMap<String, Entry>,
    bytes: usize,
}

impl Entries {
    fn remove(&mut self, path: &str) {
        if let Some(old) = self.map.remove(path) {
            self.bytes -= old.body.len();
        }
    }
}

/// The answers of one credential.
#[derive(Debug)]
pub struct AnswerCache {
    limits: CacheLimits,
    entries: Mutex<Entries>,
}

impl AnswerCache {
    pub fn new(limits: CacheLimits) -> AnswerCache {
        AnswerCache {
            limits,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves a consistent map (every
        // mutation is a single call), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer stored for `path` if it is at most `ttl` old.
    pub fn get(&self, path: &str, ttl: Duration) -> Option<Bytes> {
        let mut entries = self.lock();
        let fresh = entries.map.get(path)?.stored.elapsed() <= ttl;
        if !fresh {
            return None;
        }
        entries.map.to_back(path);
        entries.map.get(path).map(|e| e.body.clone())
    }

    /// Keeps the answer for `path`, evicting the least recently used
    /// answers beyond the limits.
    pub fn put(&self, path: &str, body: Bytes) {
        if body.len() > self.limits.max_bytes / 4 || self.limits.max_entries == 0 {
            return;
        }
        let mut entries = self.lock();
        entries.remove(path);
        entries.bytes += body.len();
        entries.map.insert(
            path.to_string(),
            Entry {
                body,
                stored: Instant::now(),
            },
        );
        while entries.map.len() > self.limits.max_entries || entries.bytes > self.limits.max_bytes {
            let Some((_, old)) = entries.map.pop_front() else {
                break;
            };
            entries.bytes -= old.body.len();
        }
    }

    /// Forgets every answer of the endpoint `path` belongs to
    /// (`/tasks/12/close` forgets every `/tasks` answer).
    pub fn invalidate(&self, path: &str) {
        let endpoint = endpoint_of(path);
        let mut entries = self.lock();
        let stale: Vec<String> = entries
            .map
            .keys()
            .filter(|k| endpoint_of(k) == endpoint)
            .cloned()
            .collect();
        for key in stale {
            entries.remove(&key);
        }
    }

    /// Answers kept now.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the answers kept now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// The first segment of a request path: `/tasks?page=2` and `/tasks/12`
/// are both `/tasks`.
fn endpoint_of(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or(path);
    let end = path
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '/')
        .map_or(path.len(), |(i, _)| i);
    &path[..end]
}

/// The process-wide cache of one API base URL, organization and token.
pub fn shared_cache(
    base_url: &str,
    organization_id: &str,
    token: &str,
    limits: CacheLimits,
) -> Arc<AnswerCache> {
    static CACHES: OnceLock<Mutex<HashMap<u64, Arc<AnswerCache>>>> = OnceLock::new();
    // Key on a hash so the token itself is not kept in another place.
    let mut hasher = DefaultHasher::new();
    (base_url, organization_id, token).hash(&mut hasher);
    let key = hasher.finish();
    let mut map = CACHES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(key)
        .or_insert_with(|| Arc::new(AnswerCache::new(limits)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn answers_are_reused_only_within_the_readers_ttl() {
        let cache = AnswerCache::new(CacheLimits::default());
        cache.put("/tasks?page=1", body(3));
        assert_eq!(
            cache.get("/tasks?page=1", Duration::from_secs(60)),
            Some(body(3))
        );
        assert_eq!(cache.get("/tasks?page=2", Duration::from_secs(60)), None);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get("/tasks?page=1", Duration::from_millis(1)), None);
    }

    #[test]
    fn the_least_recently_used_answers_go_first() {
        let cache = AnswerCache::new(CacheLimits {
            max_entries: 2,
            max_bytes: 1_000,
        });
        cache.put("/a", body(1));
        cache.put("/b", body(1));
        let ttl = Duration::from_secs(60);
        assert!(cache.get("/a", ttl).is_some());
        cache.put("/c", body(1));
        assert!(cache.get("/a", ttl).is_some());
        assert!(cache.get("/b", ttl).is_none());
        assert_eq!(cache.len(), 2);

        cache.put("/big", body(200));
        cache.put("/big2", body(200));
        assert!(cache.bytes() <= 1_000, "{}", cache.bytes());
        cache.put("/huge", body(251));
        assert!(
            cache.get("/huge", ttl).is_none(),
            "over a quarter of the bytes"
        );
    }

    #[test]
    fn a_write_forgets_its_endpoint_only() {
        let cache = AnswerCache::new(CacheLimits::default());
        cache.put("/tasks?filter[project_id]=1&page[number]=1", body(1));
        cache.put("/tasks/12?include=project", body(1));
        cache.put("/projects?page[number]=1", body(1));
        cache.invalidate("/tasks/12/close");
        assert_eq!(cache.len(), 1);
        assert!(
            cache
                .get("/projects?page[number]=1", Duration::MAX)
                .is_some()
        );
        assert_eq!(cache.bytes(), 1);
    }

    #[test]
    fn one_cache_per_credential() {
        let limits = CacheLimits::default();
        let a = shared_cache("http://x", "1", "t1", limits);
        let b = shared_cache("http://x", "1", "t1", limits);
        let c = shared_cache("http://x", "1", "t2", limits);
        let d = shared_cache("http://x", "2", "t1", limits);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(!Arc::ptr_eq(&a, &d));
    }

    #[test]
    fn endpoints_are_the_first_path_segment() {
        assert_eq!(endpoint_of("/tasks?page=1"), "/tasks");
        assert_eq!(endpoint_of("/tasks/12/close"), "/tasks");
        assert_eq!(endpoint_of("/tasks"), "/tasks");
    }
}
