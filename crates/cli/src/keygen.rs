//! `provenance keygen`: create a signing key.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use provenance::{Keys, nip19};
use serde::Serialize;

use crate::keyfile;
use crate::output::Out;

/// Create a signing key file (nsec, mode 0600; or NIP-49 encrypted with --encrypt)
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Where to write the key [default: $XDG_CONFIG_HOME/provenance/key.nsec]
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Encrypt the key with a passphrase (NIP-49 ncryptsec); the passphrase comes from
    /// PROVENANCE_PASSPHRASE or is asked on the terminal
    #[arg(long)]
    encrypt: bool,
    /// scrypt cost of the encryption, as log2(N)
    #[arg(long, value_name = "N", default_value_t = 16, requires = "encrypt",
          value_parser = clap::value_parser!(u8).range(10..=22))]
    log_n: u8,
    /// Overwrite an existing key file
    #[arg(long)]
    force: bool,
    /// Print JSON Lines instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Created<'a> {
    path: &'a str,
    npub: &'a str,
    pubkey: &'a str,
    encrypted: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let path = match args.out {
        Some(p) => p,
        None => keyfile::default_path()?,
    };
    let passphrase = if args.encrypt {
        Some(keyfile::passphrase(true)?)
    } else {
        None
    };
    let keys = Keys::generate();
    keyfile::create(&path, &keys, passphrase.as_deref(), args.log_n, args.force)?;
    let npub = nip19::encode_npub(&keys.public_key());
    let mut out = Out::new(args.json);
    let path_text = path.display().to_string();
    out.message(
        "key",
        &Created {
            path: &path_text,
            npub: &npub,
            pubkey: &keys.public_key().to_hex(),
            encrypted: args.encrypt,
        },
    )?;
    out.line(&format!(
        "wrote {} key to {path_text}\npublic key: {npub}",
        if args.encrypt {
            "an encrypted (NIP-49)"
        } else {
            "a"
        }
    ))?;
    Ok(ExitCode::SUCCESS)
}
