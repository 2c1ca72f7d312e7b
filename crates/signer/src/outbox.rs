//! Publishing stored events to external relays, durably.
//!
//! [`SqliteStore::publish_to`] makes every [`crate::Store::put`] queue one outbox row per relay
//! in the same transaction as the event, so a queued publication survives whatever the event
//! survives (a restart, `kill -9`). An [`Outbox`] worker sends due rows with
//! [`provenance_relay::publish`]: a row is removed when the relay answers `OK true` (or
//! `OK false` with `duplicate:`: it already has the event); otherwise it is tried again after
//! a delay that doubles from [`Outbox::FIRST_DELAY`] up to [`Outbox::MAX_DELAY`]. A relay that
//! refuses an event for good (`blocked:`, `invalid:`) is retried at the longest delay, so an
//! operator sees it in the queue rather than losing the publication silently.

use std::sync::Arc;
use std::time::Duration;

use provenance::nostr::prelude::Event;
use provenance_relay::Options;
use tokio::sync::Notify;

use crate::store::{SqliteStore, StoreError};
use crate::{Clock, OnStored};

/// The worker that empties the outbox.
pub struct Outbox {
    store: Arc<SqliteStore>,
    clock: Arc<dyn Clock>,
    options: Options,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

/// Rows sent per round.
const BATCH: usize = 64;

impl Outbox {
    /// Delay after the first failure.
    pub const FIRST_DELAY: Duration = Duration::from_secs(1);
    /// Longest delay between attempts.
    pub const MAX_DELAY: Duration = Duration::from_secs(300);

    /// A worker over `store`'s outbox, with the relay client's default limits.
    pub fn new(store: Arc<SqliteStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            options: Options::default(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Sets the relay client's limits. [`Options::default`] by default.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// A hook for [`crate::SignerBuilder::on_stored`] that wakes the worker, so that a new
    /// event goes out at once. When the store queues events for no relay
    /// ([`SqliteStore::relays`] is empty) the hook does nothing: a stored event added no row,
    /// and a round would be an SQLite query per answer for nothing (rows left by an earlier
    /// run with relays still go on the worker's timer).
    pub fn waker(&self) -> OnStored {
        if self.store.relays().is_empty() {
            return Arc::new(|_event: &Event| {});
        }
        let wake = self.wake.clone();
        Arc::new(move |_event: &Event| wake.notify_one())
    }

    /// Runs forever: a round whenever an event is stored, at least every second, and at once
    /// after a round that delivered a whole batch (more rows may be due: waiting for the timer
    /// would drain a backlog at one batch a second).
    pub async fn run(self) {
        loop {
            // Errors are in the rows (last_error); the store failing is retried next round.
            if matches!(self.round().await, Ok(delivered) if delivered == BATCH) {
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Self::FIRST_DELAY) => {}
            }
        }
    }

    /// Sends every row due now; returns how many were delivered.
    pub async fn round(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let store = self.store.clone();
        let due = tokio::task::spawn_blocking(move || store.outbox_due(now, BATCH))
            .await
            .map_err(|_| StoreError::Corrupt {
                request: "outbox".to_owned(),
            })??;
        let mut delivered = 0;
        for (json, relay, attempts) in due {
            let Ok(event) = Event::from_json(&json) else {
                continue;
            };
            let reports =
                provenance_relay::publish(std::slice::from_ref(&relay), &event, &self.options)
                    .await;
            let outcome = reports.into_iter().next().map(|r| r.outcome);
            let (id, store) = (event.id.to_hex(), self.store.clone());
            let result = match outcome {
                Some(Ok(ack)) if ack.accepted || ack.message.starts_with("duplicate:") => {
                    delivered += 1;
                    tokio::task::spawn_blocking(move || store.outbox_delivered(&id, &relay)).await
                }
                other => {
                    let error = match other {
                        Some(Ok(ack)) => format!("refused: {}", ack.message),
                        Some(Err(e)) => e.to_string(),
                        None => "no report".to_owned(),
                    };
                    let next = now.saturating_add(delay(attempts).as_millis() as u64);
                    tokio::task::spawn_blocking(move || {
                        store.outbox_failed(&id, &relay, next, &error)
                    })
                    .await
                }
            };
            if let Ok(result) = result {
                result?;
            }
        }
        Ok(delivered)
    }
}

/// The delay after `attempts` earlier failures: 1 s, 2 s, 4 s, ... up to 300 s.
fn delay(attempts: u32) -> Duration {
    Outbox::FIRST_DELAY
        .saturating_mul(1u32 << attempts.min(16))
        .min(Outbox::MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provenance::clock::SystemClock;
    use provenance::{Keys, Model, Output, Record};

    /// Whether the worker has a wake waiting (taken if so).
    fn woken(outbox: &Outbox) -> bool {
        let notified = outbox.wake.notified();
        tokio::pin!(notified);
        // A stored permit completes the first poll; none leaves it pending.
        notified.as_mut().enable()
    }

    #[test]
    fn a_stored_event_wakes_the_worker_only_when_the_store_queues_for_relays() {
        let event = provenance::event::sign(
            &Record::new(Output::from_text("x"), Model::named("m")),
            &Keys::generate(),
            &SystemClock,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (relays, wakes) in [(vec![], false), (vec!["ws://127.0.0.1:1".to_owned()], true)] {
            let path = dir.path().join(format!("{}.sqlite", relays.len()));
            let store = Arc::new(SqliteStore::open(&path).unwrap().publish_to(relays));
            let outbox = Outbox::new(store, Arc::new(SystemClock));
            (outbox.waker())(&event);
            assert_eq!(woken(&outbox), wakes);
        }
    }

    #[test]
    fn backoff_doubles_and_stops_at_the_cap() {
        assert_eq!(delay(0), Duration::from_secs(1));
        assert_eq!(delay(3), Duration::from_secs(8));
        assert_eq!(delay(9), Outbox::MAX_DELAY);
        assert_eq!(delay(u32::MAX), Outbox::MAX_DELAY);
    }
}
