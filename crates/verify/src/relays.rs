//! Events from relays: the best copy of an event asked for by id, and the events of a query,
//! verified as they arrive.
//!
//! No relay is trusted. For an event asked for by id, every relay's copy is verified and only
//! a copy whose recomputed id is the requested id can pass, so a relay that answers first
//! with a forgery cannot hide the genuine event another relay holds. For a query, a copy of
//! an event already verified from another relay is not reported again.

use std::collections::HashSet;
use std::io;

use futures_util::{FutureExt, StreamExt};
use provenance::event::{self, Expect};
use provenance::nostr::prelude::Filter;
use provenance::{EventId, PublicKey};
use provenance_relay::StreamItem;

use crate::pipeline::{CHUNK_EVENTS, Checked, Pipeline, error_report};
use crate::report::Sink;
use crate::source::Item;

/// Most events one relay may return for a query.
const MAX_QUERY_EVENTS_PER_RELAY: usize = 1_000_000;

/// A copy of an event asked for by id.
struct Copy {
    relay: String,
    json: String,
    holds: bool,
}

/// What a query run came to, beyond what was reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryEnd {
    /// Relays whose query failed (each reported as an error item).
    pub failed_relays: usize,
    /// Distinct events that held.
    pub held: usize,
}

impl Pipeline {
    /// Fetches an event by id from `relays`, verifies every copy, and reports the best one
    /// (the first that holds, else the first that parsed) as `"{input} (from {relay})"`, or
    /// an error item when no relay returned a usable copy. Relay failures are warnings.
    ///
    /// # Errors
    ///
    /// Only the sink's.
    pub async fn check_remote<S: Sink>(
        &self,
        sink: &mut S,
        new_report: &(dyn Fn(usize) -> S::Report + Sync),
        input: &str,
        id: EventId,
        author: Option<PublicKey>,
        relays: &[String],
    ) -> io::Result<()> {
        let expect = Expect {
            id: Some(id),
            author,
        };
        let filter = Filter::new().id(id);
        let mut stream = std::pin::pin!(provenance_relay::stream(
            relays,
            &filter,
            &self.options.relay_options
        ));
        let mut best: Option<Copy> = None;
        let mut rejected = Vec::new();
        let mut relay_errors = Vec::new();
        let mut verifier = self.lend_verifier();
        while let Some(item) = stream.next().await {
            match item {
                StreamItem::Event(raw) => {
                    let ev = match event::parse_event(&raw.json, &self.options.limits) {
                        Ok(ev) => ev,
                        Err(e) => {
                            rejected.push(format!("{}: {e}", raw.relay));
                            continue;
                        }
                    };
                    let holds = self.verify_one(&mut verifier.0, &ev, &expect).holds();
                    if best.as_ref().is_none_or(|b| !b.holds && holds) {
                        best = Some(Copy {
                            relay: raw.relay,
                            json: raw.json,
                            holds,
                        });
                    }
                }
                StreamItem::End(report) => {
                    if let Err(e) = report.outcome {
                        relay_errors.push(format!("{}: {e}", report.relay));
                    }
                }
            }
        }
        drop(verifier);
        for message in &relay_errors {
            sink.warning(&format!("{input}: relay {message}"));
        }
        let report = match best {
            Some(copy) => {
                let item = Item {
                    origin: format!("{input} (from {})", copy.relay),
                    text: Ok(copy.json),
                    expect,
                };
                let reports = self.verify_chunk(vec![item], sink, new_report).await;
                return sink.write(reports, 0);
            }
            None if !rejected.is_empty() => error_report(
                new_report,
                input,
                &format!("no relay returned a usable event: {}", rejected.join("; ")),
            ),
            None => error_report(
                new_report,
                input,
                &format!(
                    "event {id} not found on {} relay{}",
                    relays.len(),
                    if relays.len() == 1 { "" } else { "s" }
                ),
            ),
        };
        sink.write(vec![report], 0)
    }

    /// Runs a query on the pipeline's relays and verifies the events as they arrive: whatever
    /// has arrived is verified whenever the relays pause (or a chunk fills up). A relay whose
    /// query fails is an error item named by the relay.
    ///
    /// # Errors
    ///
    /// Only the sink's.
    pub async fn check_query<S: Sink>(
        &self,
        sink: &mut S,
        new_report: &(dyn Fn(usize) -> S::Report + Sync),
        filter: &Filter,
    ) -> io::Result<QueryEnd> {
        let opts = provenance_relay::Options {
            max_events_per_relay: MAX_QUERY_EVENTS_PER_RELAY,
            ..self.options.relay_options.clone()
        };
        let mut stream = std::pin::pin!(provenance_relay::stream(
            &self.options.relays,
            filter,
            &opts
        ));
        let mut pending: Vec<Item> = Vec::new();
        let mut held = HashSet::new();
        let mut end = QueryEnd::default();
        loop {
            let next = match stream.next().now_or_never() {
                Some(next) => next,
                None => {
                    self.flush_query(sink, new_report, &mut pending, &mut held)
                        .await?;
                    stream.next().await
                }
            };
            let Some(item) = next else { break };
            match item {
                StreamItem::Event(raw) => {
                    pending.push(Item::new(format!("{} (query)", raw.relay), Ok(raw.json)));
                    if pending.len() >= CHUNK_EVENTS {
                        self.flush_query(sink, new_report, &mut pending, &mut held)
                            .await?;
                    }
                }
                StreamItem::End(report) => {
                    if let Err(e) = report.outcome {
                        end.failed_relays += 1;
                        self.flush_query(sink, new_report, &mut pending, &mut held)
                            .await?;
                        let message = format!("relay query: {e}");
                        sink.write(vec![error_report(new_report, &report.relay, &message)], 0)?;
                    }
                }
            }
        }
        self.flush_query(sink, new_report, &mut pending, &mut held)
            .await?;
        end.held = held.len();
        Ok(end)
    }

    /// Verifies and reports the events of a query that have arrived, leaving out copies of
    /// events that already held.
    async fn flush_query<S: Sink>(
        &self,
        sink: &mut S,
        new_report: &(dyn Fn(usize) -> S::Report + Sync),
        pending: &mut Vec<Item>,
        held: &mut HashSet<EventId>,
    ) -> io::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut checked = self.verify_items(std::mem::take(pending));
        let labels = match self.options.labels {
            true => Some(self.fetch_labels(&checked, sink).await),
            false => None,
        };
        // Labels are added before the copies are compared: whether a copy held is the verdict
        // it is reported with.
        if let Some(labels) = &labels {
            let mut verifier = self.lend_verifier();
            for item in &mut checked {
                if let Checked::Event {
                    event,
                    verification,
                    ..
                } = item
                {
                    let found = labels.get(&event.id).map_or(&[][..], Vec::as_slice);
                    self.add_labels(&mut verifier.0, event, found, verification);
                }
            }
        }
        checked.retain(|item| match item {
            Checked::Event {
                event,
                verification,
                ..
            } => !verification.holds() || held.insert(event.id),
            Checked::Error { .. } => true,
        });
        let reports = self.report_checked(checked, None, new_report);
        sink.write(reports, 0)
    }
}
