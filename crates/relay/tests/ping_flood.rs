//! A relay that pings without reading makes the client owe it a pong per ping. Once the socket
//! is full those pongs wait in the client's write buffer, which is bounded: before the bound,
//! memory grew by a pong per ping until the timeout (121 MB in 25 s).
//!
//! Alone in its test binary, so that the process's peak memory is this test's.
// Tests fail by panicking; unwrap is how they say so.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use provenance_relay::nostr::prelude::*;
use provenance_relay::testing::{Behaviour, ScriptedRelay};
use provenance_relay::{Options, RelayError, Waiting, fetch};

/// `VmRSS` or `VmHWM` of this process in KiB, from /proc/self/status.
fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[tokio::test]
async fn a_relay_that_pings_without_reading_does_not_grow_the_clients_memory() {
    // 400,000 pings of 125 bytes: 52 MB of pongs owed.
    let bad = ScriptedRelay::start(Behaviour::PingFlood { pings: 400_000 })
        .await
        .unwrap();
    let opts = Options {
        eose_timeout: Duration::from_secs(15),
        ..Options::default()
    };
    let before = memory_kib("VmRSS");
    let outcome = fetch(
        &[bad.url().to_owned()],
        &Filter::new().kind(Kind::Custom(1988)),
        &opts,
    )
    .await;
    let peak = memory_kib("VmHWM");
    // The relay never answers the query: the client waits it out (or gives up on a full
    // buffer), and in either case holds little while it waits.
    match outcome.relays[0].outcome.as_ref().unwrap_err() {
        RelayError::Timeout {
            waiting_for: Waiting::Eose,
            ..
        }
        | RelayError::NotReading { .. } => {}
        other => panic!("unexpected error: {other:?}"),
    }
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 24,
        "memory grew by {grew_mib} MiB while a relay pinged without reading"
    );
}
