//! The raw libsecp256k1 BIP-340 verification rate on this machine, the ceiling for event
//! verification: keys already parsed, message already hashed, nothing else done.
//!
//! `verify-rate [EVENTS] [SECONDS]` signs EVENTS (default 20,000) events from provenance-fixtures
//! generator, then verifies their signatures for about SECONDS (default 3) on 1 thread and on
//! every core, and prints one JSON object:
//! `{"threads": N, "per_sec_1": r1, "per_sec_n": rN}` (verifications per second).

use std::time::{Duration, Instant};

use provenance_fixtures::generate::EventGenerator;
use rayon::prelude::*;
use secp256k1::{Secp256k1, XOnlyPublicKey, schnorr};

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let generator = EventGenerator::new();
    let items: Vec<(XOnlyPublicKey, [u8; 32], schnorr::Signature)> = (0..count)
        .into_par_iter()
        .map(|i| {
            let ev = generator.event(i);
            // Generated events are signed by valid keys.
            let key = XOnlyPublicKey::from_byte_array(ev.pubkey.as_bytes()).expect("valid key");
            let sig = schnorr::Signature::from_byte_array(*ev.sig.as_bytes());
            (key, ev.id.to_bytes(), sig)
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_sec_1 = rate(&items, 1, seconds);
    let per_sec_n = rate(&items, threads, seconds);
    println!(
        r#"{{"threads": {threads}, "per_sec_1": {per_sec_1:.0}, "per_sec_n": {per_sec_n:.0}}}"#
    );
}

/// Verifications per second with `threads` threads, each looping over all items until the
/// time is up.
fn rate(
    items: &[(XOnlyPublicKey, [u8; 32], schnorr::Signature)],
    threads: usize,
    seconds: f64,
) -> f64 {
    let secp = Secp256k1::verification_only();
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let done: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let secp = &secp;
                scope.spawn(move || {
                    let mut n = 0u64;
                    let mut i = t * items.len() / threads;
                    while start.elapsed() < budget {
                        for _ in 0..256 {
                            let (key, msg, sig) = &items[i % items.len()];
                            assert!(secp.verify_schnorr(sig, msg, key).is_ok());
                            i += 1;
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        // A worker only panics on an invalid signature, which generated events never have.
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    done as f64 / start.elapsed().as_secs_f64()
}
