//! The options of `provenance serve` that are more than clap's parsing: `--engine-param`
//! values, and a `--config` file merged under the command line.

use anyhow::{Context, Result, bail};

use super::Args;

/// `KEY=VALUE` of `--engine-param`: a number or `true`/`false` as such, `flash_attn` as `on` or
/// `off`, anything else refused with the keys that are understood.
pub(super) fn engine_param(text: &str) -> Result<(String, serde_json::Value), String> {
    use serde_json::Value;
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    let (key, value) = (key.trim(), value.trim());
    let parsed = match key {
        "batch" | "ubatch" | "threads" => value.parse::<u64>().ok().map(Value::from),
        "repack" => value.parse::<bool>().ok().map(Value::from),
        "flash_attn" => ["on", "off"].contains(&value).then(|| Value::from(value)),
        _ => {
            return Err(format!(
                "unknown engine setting {key:?}: the settings are batch, ubatch, threads, repack, flash_attn"
            ));
        }
    };
    parsed
        .map(|v| (key.to_owned(), v))
        .ok_or_else(|| match key {
            "repack" => format!("{key}={value}: expected true or false"),
            "flash_attn" => {
                format!("{key}={value}: expected on or off (auto does not say what ran)")
            }
            _ => format!("{key}={value}: expected a whole number"),
        })
}

/// The options of a config file as arguments, leaving out those the command line sets.
fn config_args(path: &std::path::Path, command_line: &[String]) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --config {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (line, None),
        };
        if name.is_empty() || name == "config" || name.starts_with('-') {
            bail!(
                "--config {} line {}: expected `name = value`",
                path.display(),
                n + 1
            );
        }
        let flag = format!("--{name}");
        if command_line
            .iter()
            .any(|a| a == &flag || a.starts_with(&format!("{flag}=")))
        {
            continue;
        }
        out.push(flag);
        out.extend(value.map(str::to_owned));
    }
    Ok(out)
}

/// `Args` again, with the config file's options before the command line's.
pub(super) fn with_config(args: Args) -> Result<Args> {
    let Some(path) = &args.config else {
        return Ok(args);
    };
    use clap::{Args as _, FromArgMatches};
    let argv: Vec<String> = std::env::args().collect();
    let after = argv
        .iter()
        .position(|a| a == "serve")
        .map_or(&argv[..0], |i| &argv[i + 1..]);
    let mut merged = vec!["serve".to_owned()];
    merged.extend(config_args(path, after)?);
    merged.extend(after.iter().cloned());
    let command = Args::augment_args(clap::Command::new("serve"));
    let matches = command.try_get_matches_from(merged)?;
    Ok(Args::from_arg_matches(&matches)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_params_are_typed_and_unknown_or_unreproducible_values_refused() {
        assert_eq!(
            engine_param("batch=2048").unwrap(),
            ("batch".to_owned(), serde_json::json!(2048))
        );
        assert_eq!(
            engine_param("repack=false").unwrap().1,
            serde_json::json!(false)
        );
        assert_eq!(
            engine_param("flash_attn=on").unwrap().1,
            serde_json::json!("on")
        );
        let auto = engine_param("flash_attn=auto").unwrap_err();
        assert!(auto.contains("auto does not say what ran"), "{auto}");
        assert!(
            engine_param("batch=big")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            engine_param("ctx=4096")
                .unwrap_err()
                .contains("unknown engine setting")
        );
        assert!(engine_param("batch").unwrap_err().contains("KEY=VALUE"));
    }

    #[test]
    fn config_files_become_arguments_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.conf");
        std::fs::write(
            &path,
            "# the box\nupstream = http://127.0.0.1:8080\nmodel = \"m.gguf\"\nrelay = ws://a\nrelay = ws://b\ninline\nlisten = 0.0.0.0:1\n",
        )
        .unwrap();
        let args = config_args(&path, &["--listen".into(), "127.0.0.1:9".into()]).unwrap();
        assert_eq!(
            args,
            [
                "--upstream",
                "http://127.0.0.1:8080",
                "--model",
                "m.gguf",
                "--relay",
                "ws://a",
                "--relay",
                "ws://b",
                "--inline"
            ]
        );
        std::fs::write(&path, "--upstream x\n").unwrap();
        assert!(config_args(&path, &[]).is_err());
    }
}
