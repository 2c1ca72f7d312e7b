//! How the pipeline hands back what it found: the caller implements [`Report`] and [`Sink`].
//!
//! This is the seam between verifying and rendering, in the spirit of ripgrep's `Sink`: the
//! pipeline never formats a line. It verifies a batch of items on one thread of the pool and
//! hands each item's verdict, in input order, to a [`Report`] made for that batch; the reports
//! of a chunk then go to the caller's [`Sink`], in input order, on the caller's thread.
//!
//! A report may render as it goes (the CLI's text and `--json` reports write each verdict's
//! line into a buffer of the batch, on the thread that verified it, so writing stays one copy
//! per batch) or keep the verdicts ([`Verdicts`]); the sink decides where they go.

use std::io;

use provenance::Event;
use provenance::event::Verification;

use crate::verdict::Verdict;

/// Receives the items of one batch, in input order, on the thread that verified them.
pub trait Report: Send {
    /// An event and what its verification (with evidence and labels) came to.
    fn verdict(&mut self, origin: &str, event: &Event, verification: &Verification);

    /// An item that is not an event to verify (unreadable, not JSON, not found on any relay),
    /// with a one-line reason.
    fn error(&mut self, origin: &str, message: &str);
}

/// Receives the reports of a run in input order, on the caller's thread.
pub trait Sink {
    /// The report of one batch.
    type Report: Report;

    /// Takes a chunk's reports, in input order; `input_bytes` is how much of the input they
    /// cover (0 when not read from files). An error (a closed pipe) stops the run.
    ///
    /// # Errors
    ///
    /// Whatever writing the reports gave; the pipeline stops and returns it.
    fn write(&mut self, reports: Vec<Self::Report>, input_bytes: u64) -> io::Result<()>;

    /// Something the run could not do that does not make an item an error (a relay that did
    /// not answer a label query, for instance). Ignored by default.
    fn warning(&mut self, message: &str) {
        let _ = message;
    }

    /// A full chunk is about to be verified from files totalling `total_bytes`: the run is
    /// large enough to show progress. Ignored by default.
    fn large_input(&mut self, total_bytes: u64) {
        let _ = total_bytes;
    }
}

/// An item that is no event: where it came from and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ItemError {
    /// The item's origin (a file and line, a relay, an argument).
    pub origin: String,
    /// Why it is no event, in one line.
    pub message: String,
}

/// A report that keeps every verdict (and error) of its batch, for callers that want values
/// rather than text.
#[derive(Debug, Default)]
pub struct Verdicts {
    /// In input order: a verdict, or why the item is no event.
    pub items: Vec<Result<Verdict, ItemError>>,
}

impl Report for Verdicts {
    fn verdict(&mut self, origin: &str, event: &Event, verification: &Verification) {
        self.items
            .push(Ok(Verdict::new(event, verification).with_input(origin)));
    }

    fn error(&mut self, origin: &str, message: &str) {
        self.items.push(Err(ItemError {
            origin: origin.to_owned(),
            message: message.to_owned(),
        }));
    }
}
