//! Exposures and metric events, buffered in bounded memory and sent in batches.
//!
//! Recording never blocks the application: it takes a short lock and pushes. When the
//! server is away, the buffer fills up to its limit and then drops the oldest events,
//! counting them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// One recorded event, kept small until it is sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    Exposure {
        flag: Box<str>,
        variant: Box<str>,
        targeting_key: Box<str>,
        at_ms: i64,
    },
    Metric {
        metric: Box<str>,
        value: f64,
        targeting_key: Box<str>,
        at_ms: i64,
    },
}

impl Event {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Event::Exposure {
                flag,
                variant,
                targeting_key,
                at_ms,
            } => json!({
                "kind": "exposure", "flag": flag, "variant": variant,
                "targetingKey": targeting_key, "timestamp": rfc3339(*at_ms),
            }),
            Event::Metric {
                metric,
                value,
                targeting_key,
                at_ms,
            } => json!({
                "kind": "metric", "metric": metric, "value": value,
                "targetingKey": targeting_key, "timestamp": rfc3339(*at_ms),
            }),
        }
    }
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(crate) struct EventQueue {
    buffer: Mutex<VecDeque<Event>>,
    limit: usize,
    dropped: AtomicU64,
}

impl EventQueue {
    pub(crate) fn new(limit: usize) -> EventQueue {
        EventQueue {
            buffer: Mutex::new(VecDeque::new()),
            limit: limit.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn push(&self, event: Event) {
        let mut buffer = self
            .buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buffer.len() >= self.limit {
            buffer.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        buffer.push_back(event);
    }

    pub(crate) fn len(&self) -> usize {
        self.buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Takes up to `count` of the oldest events to send.
    pub(crate) fn take(&self, count: usize) -> Vec<Event> {
        let mut buffer = self
            .buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = count.min(buffer.len());
        buffer.drain(..count).collect()
    }

    /// Puts back events that could not be sent, ahead of newer ones, within the limit:
    /// what does not fit is the oldest, and is dropped.
    pub(crate) fn put_back(&self, events: Vec<Event>) {
        let mut buffer = self
            .buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let room = self.limit.saturating_sub(buffer.len());
        let skip = events.len().saturating_sub(room);
        self.dropped.fetch_add(skip as u64, Ordering::Relaxed);
        for event in events.into_iter().skip(skip).rev() {
            buffer.push_front(event);
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(n: i64) -> Event {
        Event::Metric {
            metric: "m".into(),
            value: n as f64,
            targeting_key: "u".into(),
            at_ms: n,
        }
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts() {
        let queue = EventQueue::new(3);
        for n in 0..5 {
            queue.push(metric(n));
        }
        assert_eq!(queue.dropped(), 2);
        assert_eq!(queue.take(10), vec![metric(2), metric(3), metric(4)]);
    }

    #[test]
    fn unsent_events_go_back_ahead_of_newer_ones() {
        let queue = EventQueue::new(4);
        for n in 0..3 {
            queue.push(metric(n));
        }
        let batch = queue.take(2);
        queue.push(metric(3));
        queue.push(metric(4));
        queue.put_back(batch);
        // Room for one of the two: the older is dropped.
        assert_eq!(queue.dropped(), 1);
        assert_eq!(
            queue.take(10),
            vec![metric(1), metric(2), metric(3), metric(4)]
        );
    }

    #[test]
    fn events_have_the_server_shape() {
        let exposure = Event::Exposure {
            flag: "f".into(),
            variant: "on".into(),
            targeting_key: "u-1".into(),
            at_ms: 0,
        };
        assert_eq!(
            exposure.to_json(),
            json!({"kind": "exposure", "flag": "f", "variant": "on", "targetingKey": "u-1", "timestamp": "1970-01-01T00:00:00Z"})
        );
    }
}
