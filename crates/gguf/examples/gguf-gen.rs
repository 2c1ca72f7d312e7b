//! Writes generated GGUF files: the checked-in fixtures, or a synthetic model of any size for
//! benchmarks.
//!
//! ```text
//! cargo run -p provenance-gguf --example gguf-gen -- fixtures [DIR]     # default fixtures/gguf
//! cargo run -p provenance-gguf --example gguf-gen --release -- synthetic SIZE_MIB FILE
//! ```
#![allow(clippy::print_stderr)]

use std::fs;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use provenance_gguf::write;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["fixtures"] => fixtures(PathBuf::from("fixtures/gguf")),
        ["fixtures", dir] => fixtures(PathBuf::from(dir)),
        ["synthetic", mib, file] => synthetic(mib, file),
        _ => Err("usage: gguf-gen fixtures [DIR] | gguf-gen synthetic SIZE_MIB FILE".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gguf-gen: {e}");
            ExitCode::from(2)
        }
    }
}

fn fixtures(dir: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    for fixture in write::fixtures::all() {
        let path = dir.join(fixture.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, &fixture.bytes)?;
        eprintln!(
            "gguf-gen: wrote {} ({} bytes)",
            path.display(),
            fixture.bytes.len()
        );
    }
    Ok(())
}

fn synthetic(mib: &str, file: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mib: u64 = mib.parse()?;
    let builder = write::synthetic(mib << 20, 1);
    let out = BufWriter::with_capacity(1 << 20, fs::File::create(file)?);
    builder.write_to(out)?;
    eprintln!("gguf-gen: wrote {file} ({} bytes)", builder.len());
    Ok(())
}
