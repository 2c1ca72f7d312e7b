//! What a record asks a replay to do: the engine's settings and the request, taken from the
//! record's `replay` section and nothing else. A value the replay needs and the record does
//! not state is a [`Refusal::Missing`], never a default.

use std::collections::BTreeMap;

use provenance::digest::Sha256Digest;
use provenance::record::{REPLAY_SCHEME, Record, Replay, TokenIds};
use serde_json::{Map, Value};

use crate::error::Refusal;

/// llama.cpp's `LLAMA_DEFAULT_SEED`: the request asked for a random seed, and the sampler
/// drew one that nobody recorded.
pub const RANDOM_SEED: u64 = 0xFFFF_FFFF;

/// The sampler settings a `/completion` request may set, by llama.cpp's names: sent back as
/// recorded.
pub const REQUEST_SETTINGS: &[&str] = &[
    "seed",
    "temperature",
    "dynatemp_range",
    "dynatemp_exponent",
    "top_k",
    "top_p",
    "min_p",
    "top_n_sigma",
    "xtc_probability",
    "xtc_threshold",
    "typical_p",
    "repeat_last_n",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "dry_multiplier",
    "dry_base",
    "dry_allowed_length",
    "dry_penalty_last_n",
    "dry_sequence_breakers",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "adaptive_target",
    "adaptive_decay",
    "stop",
    "n_predict",
    "n_keep",
    "n_discard",
    "ignore_eos",
    "logit_bias",
    "min_keep",
    "samplers",
    "backend_sampling",
    "grammar",
    "grammar_lazy",
    "grammar_triggers",
    "preserved_tokens",
];

/// Settings that say how the answer is delivered, not what it is: neither sent back as
/// recorded nor compared.
pub const DELIVERY_SETTINGS: &[&str] = &[
    "stream",
    "n_probs",
    "timings_per_token",
    "post_sampling_probs",
    "return_tokens",
    "cache_prompt",
    "id_slot",
    "max_tokens",
];

/// `--flash-attn` as a record states it: only `on` and `off` say what ran (`auto` leaves it
/// to the engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashAttn {
    /// Flash attention on.
    On,
    /// Flash attention off.
    Off,
}

impl FlashAttn {
    /// `on` or `off`, as llama-server's `--flash-attn` and the record write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
        }
    }

    /// `on` or `off`; anything else is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "on" => Some(Self::On),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// The recorded settings a replay decides on, read once from `replay.settings` with their
/// types: whether the answer can be reproduced at all depends on them.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoding {
    /// `seed`: the sampler's seed ([`RANDOM_SEED`]: a random one nobody recorded).
    pub seed: u64,
    /// `temperature`: at or below 0 the engine decodes greedily and never draws from the
    /// seed.
    pub temperature: f64,
    /// `samplers`: the sampler chain, in order, by llama.cpp's names.
    pub samplers: Vec<String>,
    /// `n_predict`: the most tokens the request allowed (-1: no limit).
    pub n_predict: i64,
    /// `grammar`: a grammar the answer was constrained by (`None` when empty or absent).
    pub grammar: Option<String>,
}

impl Decoding {
    /// Reads the settings; a missing value or one of another type is a refusal naming it.
    pub fn read(settings: &BTreeMap<String, Value>) -> Result<Self, Refusal> {
        fn need<'a, T>(
            settings: &'a BTreeMap<String, Value>,
            key: &str,
            what: &str,
            read: impl FnOnce(&'a Value) -> Option<T>,
        ) -> Result<T, Refusal> {
            let value = settings.get(key).ok_or_else(|| {
                Refusal::Missing(format!("the record does not state replay.settings.{key}"))
            })?;
            read(value).ok_or_else(|| {
                Refusal::Unsupported(format!("replay.settings.{key} {value} is not {what}"))
            })
        }
        Ok(Self {
            seed: need(
                settings,
                "seed",
                "a seed (an unsigned integer)",
                Value::as_u64,
            )?,
            samplers: need(settings, "samplers", "a list of sampler names", |v| {
                v.as_array()?
                    .iter()
                    .map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })?,
            n_predict: need(settings, "n_predict", "an integer", Value::as_i64)?,
            temperature: need(settings, "temperature", "a number", Value::as_f64)?,
            grammar: match settings.get("grammar") {
                None | Some(Value::Null) => None,
                Some(Value::String(g)) if g.is_empty() => None,
                Some(Value::String(g)) => Some(g.clone()),
                Some(other) => {
                    return Err(Refusal::Unsupported(format!(
                        "replay.settings.grammar {other} is not a grammar"
                    )));
                }
            },
        })
    }

    /// Greedy decoding: the most likely token at each step, whatever the seed.
    pub fn greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// How the replay engine is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSettings {
    /// The context of a slot (`--ctx-size` with one slot; llama-server caps it at the
    /// model's training context, and a record states the value in force).
    pub ctx: u64,
    /// `--batch-size`.
    pub batch: u64,
    /// `--ubatch-size`.
    pub ubatch: u64,
    /// `--flash-attn`.
    pub flash_attn: FlashAttn,
    /// `--repack` or `--no-repack`.
    pub repack: bool,
    /// `--threads`, when recorded.
    pub threads: Option<u64>,
}

impl EngineSettings {
    /// The `llama-server` arguments: these settings, one slot, no prompt cache in memory.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--ctx-size".to_owned(),
            self.ctx.to_string(),
            "--batch-size".to_owned(),
            self.batch.to_string(),
            "--ubatch-size".to_owned(),
            self.ubatch.to_string(),
            "--flash-attn".to_owned(),
            self.flash_attn.as_str().to_owned(),
            if self.repack {
                "--repack"
            } else {
                "--no-repack"
            }
            .to_owned(),
            "--parallel".to_owned(),
            "1".to_owned(),
            "--cache-ram".to_owned(),
            "0".to_owned(),
        ];
        if let Some(threads) = self.threads {
            args.push("--threads".to_owned());
            args.push(threads.to_string());
        }
        args
    }
}

/// Everything a replay of one record needs.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How to start the engine.
    pub engine: EngineSettings,
    /// The engine binary's recorded SHA-256, if any.
    pub binary_sha256: Option<Sha256Digest>,
    /// The recorded settings, by llama.cpp's names (sent back, and compared with what the
    /// server reports).
    pub settings: BTreeMap<String, Value>,
    /// Those of them the replay decides on.
    pub decoding: Decoding,
    /// The recorded output token ids.
    pub output: TokenIds,
    /// The recorded prompt token ids (salted digest), if any.
    pub prompt_tokens: Option<TokenIds>,
    /// The recorded prompt token count (`prompt.tokens`), if any.
    pub prompt_count: Option<u64>,
}

impl Plan {
    /// Reads the replay section of `record`; refuses when a needed value is absent or when
    /// the recorded generation cannot be reproduced (a random seed, a prompt taken from the
    /// cache).
    pub fn from_record(record: &Record) -> Result<Self, Refusal> {
        let replay = record.replay.as_ref().ok_or_else(|| {
            Refusal::Missing("the record has no replay section (not a replayable answer)".into())
        })?;
        if replay.scheme != REPLAY_SCHEME {
            return Err(Refusal::Unsupported(format!(
                "replay scheme {:?} (this replayer knows {REPLAY_SCHEME})",
                replay.scheme
            )));
        }
        let need =
            |name: &str| Refusal::Missing(format!("the record does not state replay.{name}"));
        let engine = EngineSettings {
            ctx: replay.ctx.ok_or_else(|| need("ctx"))?,
            batch: replay.batch.ok_or_else(|| need("batch"))?,
            ubatch: replay.ubatch.ok_or_else(|| need("ubatch"))?,
            flash_attn: match replay.flash_attn.as_deref() {
                Some(v) => FlashAttn::parse(v).ok_or_else(|| {
                    Refusal::Unsupported(format!(
                        "replay.flash_attn {v:?} (only \"on\" or \"off\" say what ran)"
                    ))
                })?,
                None => return Err(need("flash_attn")),
            },
            repack: replay.repack.ok_or_else(|| need("repack"))?,
            threads: replay.threads,
        };
        prompt_cache_unused(replay)?;
        let output = replay
            .output_tokens
            .clone()
            .ok_or_else(|| need("output_tokens"))?;
        let settings = replay.settings.clone();
        if settings.is_empty() {
            return Err(need("settings"));
        }
        let decoding = Decoding::read(&settings)?;
        if !decoding.greedy() && decoding.seed == RANDOM_SEED {
            return Err(Refusal::Unsupported(format!(
                "the answer was sampled with a random seed (settings.seed {RANDOM_SEED}, \
                 llama.cpp's 'random'), which the engine does not report"
            )));
        }
        if decoding.grammar.is_some() {
            return Err(Refusal::Unsupported(
                "the answer was constrained by a grammar".into(),
            ));
        }
        Ok(Self {
            engine,
            binary_sha256: replay.engine.as_ref().and_then(|e| e.binary_sha256),
            settings,
            decoding,
            output,
            prompt_tokens: replay.prompt_tokens.clone(),
            prompt_count: record.prompt.as_ref().and_then(|p| p.tokens),
        })
    }

    /// The `/completion` request: the prompt as token ids, every recorded setting that a
    /// request sets, one fresh computation (`cache_prompt: false`), token ids back, and the
    /// `n_probs` most likely tokens at each position.
    pub fn request(&self, prompt: &[u32], n_probs: u32) -> Value {
        let mut body = Map::new();
        for key in REQUEST_SETTINGS {
            if let Some(value) = self.settings.get(*key) {
                body.insert((*key).to_owned(), value.clone());
            }
        }
        body.insert("prompt".into(), Value::from(prompt.to_vec()));
        body.insert("cache_prompt".into(), Value::Bool(false));
        body.insert("return_tokens".into(), Value::Bool(true));
        body.insert("stream".into(), Value::Bool(false));
        body.insert("n_probs".into(), Value::from(n_probs));
        Value::Object(body)
    }

    /// The recorded settings the server reported otherwise, as `name: found (recorded x)`.
    pub fn differences(&self, reported: &Map<String, Value>) -> Vec<String> {
        self.settings
            .iter()
            .filter(|(key, _)| !DELIVERY_SETTINGS.contains(&key.as_str()))
            .filter_map(|(key, recorded)| {
                let found = reported.get(key).unwrap_or(&Value::Null);
                (!same(found, recorded)).then(|| format!("{key}: {found} (recorded {recorded})"))
            })
            .collect()
    }
}

/// JSON equality where numbers are compared by value: a record's canonical JSON writes the
/// engine's `1.0` as `1`.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A generation that took prompt tokens from the cache computed them in another split than
/// a fresh one does: not reproducible token for token.
fn prompt_cache_unused(replay: &Replay) -> Result<(), Refusal> {
    match (replay.prompt_cache_tokens, replay.cache_prompt) {
        (Some(0), _) | (None, Some(false)) => Ok(()),
        (Some(n), _) => Err(Refusal::Unsupported(format!(
            "the engine took {n} prompt tokens from its prompt cache (replay.prompt_cache_tokens)"
        ))),
        (None, _) => Err(Refusal::Missing(
            "the record says neither that the prompt cache was off nor that it was unused \
             (replay.cache_prompt, replay.prompt_cache_tokens)"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use provenance::record::{Model, Output};
    use serde_json::json;

    use super::*;

    fn record() -> Record {
        let mut record = Record::new(Output::from_text("x"), Model::named("m"));
        let settings = json!({"seed": 7, "temperature": 0.8, "top_k": 40, "n_predict": 8,
            "samplers": ["top_k", "temperature"], "stream": false, "chat_format": "Content-only"});
        record.replay = Some(Replay {
            ctx: Some(512),
            batch: Some(2048),
            ubatch: Some(512),
            flash_attn: Some("off".into()),
            repack: Some(true),
            cache_prompt: Some(false),
            prompt_cache_tokens: Some(0),
            output_tokens: Some(TokenIds::of(&[1, 2], None, true)),
            settings: serde_json::from_value(settings).unwrap_or_default(),
            ..Replay::new()
        });
        record
    }

    fn refusal(record: &Record) -> String {
        match Plan::from_record(record) {
            Err(e) => e.to_string(),
            Ok(_) => "accepted".into(),
        }
    }

    #[test]
    fn a_complete_section_plans_a_replay() {
        let plan = Plan::from_record(&record()).unwrap_or_else(|e| panic!("{e}"));
        let args = plan.engine.args().join(" ");
        assert_eq!(
            args,
            "--ctx-size 512 --batch-size 2048 --ubatch-size 512 --flash-attn off --repack \
             --parallel 1 --cache-ram 0"
        );
        let request = plan.request(&[2, 9], 3);
        assert_eq!(request["prompt"], json!([2, 9]));
        assert_eq!(request["seed"], 7);
        assert_eq!(request["samplers"], json!(["top_k", "temperature"]));
        assert_eq!(request["cache_prompt"], false);
        assert_eq!(request["stream"], false);
        assert!(request.get("chat_format").is_none(), "not a request field");
        let same: Map<String, Value> =
            serde_json::from_value(json!({"seed": 7, "temperature": 0.8, "top_k": 40,
                "n_predict": 8, "samplers": ["top_k", "temperature"], "stream": true,
                "chat_format": "Content-only"}))
            .unwrap_or_default();
        assert!(plan.differences(&same).is_empty());
        let mut float = same.clone();
        float.insert("n_predict".into(), json!(8.0));
        assert!(plan.differences(&float).is_empty(), "8.0 is 8");
        let mut other = same.clone();
        other.insert("top_k".into(), json!(41));
        other.remove("chat_format");
        assert_eq!(
            plan.differences(&other),
            vec![
                "chat_format: null (recorded \"Content-only\")",
                "top_k: 41 (recorded 40)"
            ]
        );
    }

    #[test]
    fn absent_values_are_refused_never_defaulted() {
        let mut r = Record::new(Output::from_text("x"), Model::named("m"));
        assert!(refusal(&r).contains("no replay section"), "{}", refusal(&r));
        for (name, clear) in [
            (
                "replay.ctx",
                (|s: &mut Replay| s.ctx = None) as fn(&mut Replay),
            ),
            ("replay.batch", |s| s.batch = None),
            ("replay.ubatch", |s| s.ubatch = None),
            ("replay.flash_attn", |s| s.flash_attn = None),
            ("replay.repack", |s| s.repack = None),
            ("replay.output_tokens", |s| s.output_tokens = None),
            ("replay.settings.seed", |s| {
                s.settings.remove("seed");
            }),
            ("replay.cache_prompt", |s| {
                s.cache_prompt = None;
                s.prompt_cache_tokens = None;
            }),
        ] {
            r = record();
            clear(r.replay.as_mut().unwrap_or_else(|| unreachable!()));
            let message = refusal(&r);
            assert!(message.contains(name), "{name}: {message}");
        }
    }

    #[test]
    fn unreproducible_generations_are_refused() {
        let mut r = record();
        let replay = r.replay.as_mut().unwrap_or_else(|| unreachable!());
        replay.prompt_cache_tokens = Some(3);
        assert!(
            refusal(&r).contains("took 3 prompt tokens"),
            "{}",
            refusal(&r)
        );

        let mut r = record();
        let replay = r.replay.as_mut().unwrap_or_else(|| unreachable!());
        replay.settings.insert("seed".into(), json!(RANDOM_SEED));
        assert!(refusal(&r).contains("random seed"), "{}", refusal(&r));
        // Greedy decoding does not draw from the seed.
        let replay = r.replay.as_mut().unwrap_or_else(|| unreachable!());
        replay.settings.insert("temperature".into(), json!(0.0));
        assert_eq!(refusal(&r), "accepted");

        let mut r = record();
        let replay = r.replay.as_mut().unwrap_or_else(|| unreachable!());
        replay.flash_attn = Some("auto".into());
        assert!(refusal(&r).contains("flash_attn"), "{}", refusal(&r));
        let replay = r.replay.as_mut().unwrap_or_else(|| unreachable!());
        replay.flash_attn = Some("on".into());
        replay.scheme = "other".into();
        assert!(refusal(&r).contains("scheme"), "{}", refusal(&r));
    }

    #[test]
    fn decoding_settings_are_read_with_their_types() {
        let plan = Plan::from_record(&record()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan.decoding,
            Decoding {
                seed: 7,
                temperature: 0.8,
                samplers: vec!["top_k".into(), "temperature".into()],
                n_predict: 8,
                grammar: None,
            }
        );
        assert!(!plan.decoding.greedy());
        assert_eq!(plan.engine.flash_attn, FlashAttn::Off);
        for (key, value, says) in [
            ("temperature", json!("hot"), "is not a number"),
            ("seed", json!(-1), "is not a seed"),
            ("samplers", json!("top_k;temperature"), "is not a list"),
            ("samplers", json!(["top_k", 3]), "is not a list"),
            ("n_predict", json!(8.5), "is not an integer"),
            ("grammar", json!(["root"]), "is not a grammar"),
        ] {
            let mut r = record();
            let replay = r.replay.as_mut().unwrap_or_else(|| unreachable!());
            replay.settings.insert(key.into(), value);
            let message = refusal(&r);
            assert!(
                message.contains(&format!("replay.settings.{key}")) && message.contains(says),
                "{key}: {message}"
            );
        }
        let mut r = record();
        let replay = r.replay.as_mut().unwrap_or_else(|| unreachable!());
        replay
            .settings
            .insert("grammar".into(), json!("root ::= \"x\""));
        assert!(refusal(&r).contains("grammar"), "{}", refusal(&r));
        let replay = r.replay.as_mut().unwrap_or_else(|| unreachable!());
        replay.settings.insert("grammar".into(), json!(""));
        assert_eq!(
            refusal(&r),
            "accepted",
            "an empty grammar constrains nothing"
        );
    }
}
