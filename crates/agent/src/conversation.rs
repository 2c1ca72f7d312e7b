//! Per-sender state kept in memory: the recent turns of each conversation, and a rate limit.
//!
//! Both are bounded twice: per sender (turns, bytes, a token bucket) and in the number of
//! senders held (the least recently active is forgotten first). Neither survives a restart:
//! conversations are private, and the agent keeps no more of them than it needs to answer.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use provenance::PublicKey;

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The person writing to the model.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The OpenAI chat role name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub text: String,
}

/// Limits of the conversation memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    /// Turns kept per sender (user and model turns both count). 8 by default.
    pub turns: usize,
    /// Bytes of text kept per sender; the oldest turns go first. 16 KiB by default.
    pub bytes: usize,
    /// Senders whose conversations are kept. 1,024 by default.
    pub senders: usize,
}

impl Default for ContextLimits {
    fn default() -> Self {
        Self {
            turns: 8,
            bytes: 16 * 1024,
            senders: 1024,
        }
    }
}

/// The recent turns of every conversation; see the module.
#[derive(Debug)]
pub struct Conversations {
    limits: ContextLimits,
    by_sender: HashMap<PublicKey, (u64, VecDeque<Turn>)>,
    clock: u64,
}

impl Conversations {
    /// Empty, with `limits`.
    pub fn new(limits: ContextLimits) -> Self {
        Self {
            limits,
            by_sender: HashMap::new(),
            clock: 0,
        }
    }

    /// The turns kept for `sender`, oldest first, followed by `text` as the new user turn:
    /// what the model is asked. The kept turns are trimmed so that, with `text`, they fit.
    pub fn prompt(&self, sender: &PublicKey, text: &str) -> Vec<Turn> {
        let mut turns: Vec<Turn> = self
            .by_sender
            .get(sender)
            .map(|(_, t)| t.iter().cloned().collect())
            .unwrap_or_default();
        turns.push(Turn {
            role: Role::User,
            text: text.to_owned(),
        });
        trim(&mut turns, self.limits);
        turns
    }

    /// Remembers an exchange.
    pub fn record(&mut self, sender: &PublicKey, asked: &str, answered: &str) {
        self.clock += 1;
        let clock = self.clock;
        if !self.by_sender.contains_key(sender) && self.by_sender.len() >= self.limits.senders {
            if let Some(oldest) = self
                .by_sender
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| *k)
            {
                self.by_sender.remove(&oldest);
            }
        }
        let entry = self
            .by_sender
            .entry(*sender)
            .or_insert_with(|| (clock, VecDeque::new()));
        entry.0 = clock;
        entry.1.push_back(Turn {
            role: Role::User,
            text: asked.to_owned(),
        });
        entry.1.push_back(Turn {
            role: Role::Assistant,
            text: answered.to_owned(),
        });
        let mut turns: Vec<Turn> = entry.1.drain(..).collect();
        trim(&mut turns, self.limits);
        entry.1 = turns.into();
    }

    /// How many senders are held.
    pub fn senders(&self) -> usize {
        self.by_sender.len()
    }
}

/// Drops the oldest turns until at most `limits.turns` remain and their text fits in
/// `limits.bytes`; the last turn always stays. The first kept turn is a user turn, as chat
/// templates expect.
fn trim(turns: &mut Vec<Turn>, limits: ContextLimits) {
    let mut bytes: usize = turns.iter().map(|t| t.text.len()).sum();
    let mut drop = 0;
    while turns.len() - drop > 1
        && (turns.len() - drop > limits.turns.max(1) || bytes > limits.bytes)
    {
        bytes -= turns[drop].text.len();
        drop += 1;
    }
    while turns.len() - drop > 1 && turns[drop].role != Role::User {
        drop += 1;
    }
    turns.drain(..drop);
}

/// A per-sender rate limit: a token bucket of `burst` messages refilled at `per_minute`.
#[derive(Debug)]
pub struct RateLimit {
    per_minute: u32,
    burst: u32,
    senders: usize,
    buckets: HashMap<PublicKey, (f64, Instant)>,
}

impl RateLimit {
    /// `per_minute` messages a minute per sender, `burst` at once, for at most `senders`
    /// senders (the fullest buckets are forgotten first: forgetting one only gives its sender
    /// a full bucket, which is what it had).
    pub fn new(per_minute: u32, burst: u32, senders: usize) -> Self {
        Self {
            per_minute,
            burst: burst.max(1),
            senders: senders.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one message from `sender`'s bucket at `now`; `Err` with the wait until the next
    /// one is allowed.
    pub fn take(&mut self, sender: &PublicKey, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(self.per_minute) / 60.0;
        let burst = f64::from(self.burst);
        if !self.buckets.contains_key(sender) && self.buckets.len() >= self.senders {
            // Forget the bucket that would be fullest now.
            let fullest = self
                .buckets
                .iter()
                .max_by(|a, b| {
                    let level = |(tokens, at): &(f64, Instant)| {
                        tokens + now.saturating_duration_since(*at).as_secs_f64() * rate
                    };
                    level(a.1).total_cmp(&level(b.1))
                })
                .map(|(k, _)| *k);
            if let Some(k) = fullest {
                self.buckets.remove(&k);
            }
        }
        let (tokens, at) = self.buckets.entry(*sender).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else if rate > 0.0 {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        } else {
            Err(Duration::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use provenance::Keys;

    use super::*;

    #[test]
    fn context_keeps_recent_turns_within_limits_and_starts_with_the_user() {
        let alice = Keys::generate().public_key();
        let bob = Keys::generate().public_key();
        let mut c = Conversations::new(ContextLimits {
            turns: 4,
            bytes: 1000,
            senders: 8,
        });
        for i in 0..5 {
            c.record(&alice, &format!("q{i}"), &format!("a{i}"));
        }
        let prompt = c.prompt(&alice, "q5");
        let texts: Vec<&str> = prompt.iter().map(|t| t.text.as_str()).collect();
        // Four turns at most, the oldest dropped, the first one a user turn.
        assert_eq!(texts, ["q4", "a4", "q5"]);
        assert_eq!(prompt[0].role, Role::User);
        // Conversations do not mix.
        assert_eq!(c.prompt(&bob, "hi").len(), 1);
    }

    #[test]
    fn context_is_bounded_in_bytes_and_in_senders() {
        let mut c = Conversations::new(ContextLimits {
            turns: 100,
            bytes: 10,
            senders: 2,
        });
        let keys: Vec<PublicKey> = (0..3).map(|_| Keys::generate().public_key()).collect();
        c.record(&keys[0], "0123456789", "0123456789");
        // A new question longer than the budget still goes to the model, alone.
        assert_eq!(c.prompt(&keys[0], "a long question").len(), 1);
        c.record(&keys[1], "x", "y");
        c.record(&keys[2], "x", "y");
        assert_eq!(c.senders(), 2);
        assert_eq!(
            c.prompt(&keys[0], "q").len(),
            1,
            "the oldest sender is forgotten"
        );
    }

    #[test]
    fn rate_limit_allows_a_burst_then_refills() {
        let alice = Keys::generate().public_key();
        let bob = Keys::generate().public_key();
        let mut r = RateLimit::new(60, 2, 16);
        let t0 = Instant::now();
        assert!(r.take(&alice, t0).is_ok());
        assert!(r.take(&alice, t0).is_ok());
        let wait = r.take(&alice, t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(r.take(&bob, t0).is_ok(), "senders have their own buckets");
        assert!(r.take(&alice, t0 + Duration::from_secs(1)).is_ok());
        assert!(r.take(&alice, t0 + Duration::from_secs(1)).is_err());
    }
}
