//! Gift wraps for the throughput comparison of scripts/bench-dm.sh: NIP-17 direct messages
//! (kind 14 rumors of 100 bytes, sealed and wrapped in kind 1059 by `provenance_dm::gift::wrap`)
//! from several senders to one recipient.
//!
//! `gen-wraps COUNT SENDERS WRAPS.jsonl KEY.hex` writes COUNT wraps, one JSON event a line, and
//! the recipient's secret key (hex) to KEY.hex. Sender `i` is `SHA-256("dm bench sender {i}")`
//! and the recipient `SHA-256("dm bench recipient")`; the one-time keys, nonces and dates are
//! fresh on each run. Message `n` is by sender `n % SENDERS`.

use std::io::Write;

use provenance::{Keys, SecretKey, Timestamp};
use provenance_dm::gift::{self, WrapKind};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// The length of each message, in bytes.
const MESSAGE_BYTES: usize = 100;

fn keys(label: &str) -> Keys {
    let secret: [u8; 32] = Sha256::digest(label).into();
    Keys::new(SecretKey::from_slice(&secret).expect("a hash is a valid key"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [count, senders, wraps_path, key_path] = args.as_slice() else {
        eprintln!("usage: gen-wraps COUNT SENDERS WRAPS.jsonl KEY.hex");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("COUNT is a number");
    let senders: usize = senders.parse().expect("SENDERS is a number");
    assert!(senders > 0, "at least one sender");
    let recipient = keys("dm bench recipient");
    let senders: Vec<Keys> = (0..senders)
        .map(|i| keys(&format!("dm bench sender {i}")))
        .collect();
    let now = Timestamp::now();
    let lines: Vec<String> = (0..count)
        .into_par_iter()
        .map(|n| {
            let sender = &senders[n % senders.len()];
            // 100 bytes: a numbered line, padded.
            let mut text = format!("message {n} from sender {}: ", n % senders.len());
            while text.len() < MESSAGE_BYTES {
                text.push('x');
            }
            let rumor = gift::message(&sender.public_key(), &recipient.public_key(), &text, now);
            gift::wrap(
                sender,
                &recipient.public_key(),
                rumor,
                WrapKind::Stored,
                now,
            )
            .expect("a 100-byte message wraps")
            .as_json()
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(wraps_path).expect("WRAPS.jsonl"));
    for line in &lines {
        writeln!(out, "{line}").expect("writes");
    }
    out.flush().expect("writes");
    std::fs::write(key_path, recipient.secret_key().to_secret_hex()).expect("KEY.hex");
}
