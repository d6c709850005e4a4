//! The request journal: a fixed-capacity ring buffer of what the node was asked.
//!
//! Memory stays flat under any load: at most `capacity` entries, each with a path capped
//! at [`MAX_PATH`] bytes. Capacity 0 turns it off.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// Longest path kept per entry.
pub const MAX_PATH: usize = 160;
/// Default capacity.
pub const DEFAULT_CAPACITY: usize = 1000;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// The standard methods are static strings: no allocation per request.
    pub method: Cow<'static, str>,
    pub path: String,
    pub status: u16,
    pub latency_ms: f64,
    pub request_bytes: u64,
    /// The version segment the client put before the route (`v3.0.8` of
    /// `/v3.0.8/api/v1/state`); `path` is the path as sent, prefix included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug)]
struct Ring {
    entries: VecDeque<Entry>,
    next_seq: u64,
}

/// A bounded journal.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    ring: Mutex<Ring>,
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        Journal {
            capacity,
            ring: Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.min(1 << 16)),
                next_seq: 0,
            }),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Record one request (dropping the oldest past capacity).
    pub fn record(
        &self,
        method: &str,
        path: impl Into<String>,
        status: u16,
        latency_ms: f64,
        request_bytes: u64,
    ) {
        self.record_versioned(method, path, None, status, latency_ms, request_bytes);
    }

    /// [`Journal::record`] of a request that came with a version segment.
    pub fn record_versioned(
        &self,
        method: &str,
        path: impl Into<String>,
        version: Option<&str>,
        status: u16,
        latency_ms: f64,
        request_bytes: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut path = path.into();
        if path.len() > MAX_PATH {
            let mut cut = MAX_PATH;
            while !path.is_char_boundary(cut) {
                cut -= 1;
            }
            path.truncate(cut);
            path.shrink_to_fit();
        }
        let method = match method {
            "GET" => Cow::Borrowed("GET"),
            "POST" => Cow::Borrowed("POST"),
            "DELETE" => Cow::Borrowed("DELETE"),
            "PUT" => Cow::Borrowed("PUT"),
            "PATCH" => Cow::Borrowed("PATCH"),
            "HEAD" => Cow::Borrowed("HEAD"),
            "OPTIONS" => Cow::Borrowed("OPTIONS"),
            other => Cow::Owned(other.to_owned()),
        };
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let seq = r.next_seq;
        r.next_seq += 1;
        if r.entries.len() == self.capacity {
            r.entries.pop_front();
        }
        r.entries.push_back(Entry {
            seq,
            method,
            path,
            status,
            latency_ms,
            request_bytes,
            version: version.map(str::to_owned),
        });
    }

    /// The newest `limit` entries, oldest first.
    pub fn tail(&self, limit: usize) -> Vec<Entry> {
        let r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let skip = r.entries.len().saturating_sub(limit);
        r.entries.iter().skip(skip).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total requests ever recorded.
    pub fn total(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).next_seq
    }

    /// Heap bytes held by the entries (an upper bound of what the journal costs).
    pub fn heap_bytes(&self) -> usize {
        let r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        r.entries.capacity() * std::mem::size_of::<Entry>()
            + r.entries
                .iter()
                .map(|e| {
                    e.path.capacity()
                        + match &e.method {
                            Cow::Owned(m) => m.capacity(),
                            Cow::Borrowed(_) => 0,
                        }
                })
                .sum::<usize>()
    }

    pub fn clear(&self) {
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        r.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_and_stays_bounded() {
        let j = Journal::new(1000);
        let long = "/x".repeat(500);
        for i in 0..100_000u64 {
            let path = if i % 7 == 0 {
                long.as_str()
            } else {
                mlnode_protocol::paths::POW_STATUS
            };
            j.record("GET", path, 200, 0.1, i);
        }
        assert_eq!(j.len(), 1000);
        assert_eq!(j.total(), 100_000);
        let t = j.tail(3);
        assert_eq!(
            t.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![99_997, 99_998, 99_999]
        );
        // 1000 entries × (struct + ≤ 160-byte path + method): well under 512 KiB.
        let bound = 1000 * (std::mem::size_of::<Entry>() + MAX_PATH + 8)
            + 64 * std::mem::size_of::<Entry>();
        assert!(j.heap_bytes() <= bound, "{} > {bound}", j.heap_bytes());
        assert!(t.iter().all(|e| e.path.len() <= MAX_PATH));
    }

    #[test]
    fn zero_capacity_is_off() {
        let j = Journal::new(0);
        j.record("GET", "/", 200, 0.0, 0);
        assert!(j.is_empty());
        assert_eq!(j.heap_bytes(), 0);
    }
}
