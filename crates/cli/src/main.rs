//! The `provenance` command: sign, verify and inspect provenance events for AI output.
//!
//! Thin glue: parse arguments, call the libraries, render, exit. Exit status 0 means
//! everything checked holds, 1 that a claim failed, 2 an error (errors win).

mod attest;
mod fdlimit;
mod hash;
mod input;
mod inspect;
mod keyfile;
mod keygen;
mod label;
mod lookup;
mod output;
mod pay;
mod replay;
mod serve;
mod sign;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Signed, checkable provenance for AI output, as Nostr events
#[derive(Parser, Debug)]
#[command(name = "provenance", version, after_help = output::EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Keygen(keygen::Args),
    Sign(sign::Args),
    Verify(verify::Args),
    Inspect(inspect::Args),
    /// Identify a GGUF model: SHA-256, BLAKE3 and per-tensor digests in one pass; compare two
    Hash(hash::HashArgs),
    Label(label::Args),
    Lookup(lookup::Args),
    Serve(Box<serve::Args>),
    Replay(replay::Args),
    Attest(attest::Args),
    Pay(pay::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Hash(args) => hash::run(args),
        Command::Label(args) => label::run(args),
        Command::Lookup(args) => lookup::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Replay(args) => replay::run(args),
        Command::Attest(args) => attest::run(args),
        Command::Pay(args) => pay::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`provenance verify ... | head`) is a normal way to stop.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            output::warn(&format!("{err:#}"));
            ExitCode::from(output::EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
