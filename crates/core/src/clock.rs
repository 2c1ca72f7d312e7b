//! Injected time.
//!
//! Signing stamps `created_at`; tests need that stamp fixed. Every function that needs the
//! time takes a [`Clock`] instead of reading the system clock itself.

use nostr::prelude::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, as a Nostr timestamp (Unix seconds).
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that always returns the same instant (for tests and reproducible fixtures).
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
