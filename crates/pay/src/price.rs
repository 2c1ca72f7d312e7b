//! Prices: what a generation costs, per route, in millisatoshis.
//!
//! A price has three parts, each optional: per request, per 1,000 output tokens, per 1,000
//! input tokens. Before a request is forwarded the most it can cost is reserved
//! ([`Price::reserve`]: the request part, the input part for the prompt's size as the client
//! states it, and the output part for `max_tokens`); when the answer is in, the cost is
//! settled from the usage the upstream reports ([`Price::cost`]) and the rest is refunded.
//!
//! Amounts are read as `<whole number> sat` or `<whole number> msat` ([`parse_amount`]):
//! negative, fractional or absurd amounts (over 21 million bitcoin) are refused with a line
//! naming the value.

use std::collections::BTreeMap;
use std::fmt;

/// Millisatoshis in a satoshi.
pub const MSAT_PER_SAT: u64 = 1000;
/// The most any amount may be: 21 million bitcoin, in millisatoshis.
pub const MAX_MSAT: u64 = 21_000_000 * 100_000_000 * MSAT_PER_SAT;

/// Why a price or amount is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// Not `<whole number> sat|msat`.
    #[error(
        "{value:?}: {why} (write a whole number of sat or msat, e.g. \"21 sat\" or \"500 msat\")"
    )]
    Amount {
        /// The value as written.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A price line that is not `route part = amount`.
    #[error("{0:?}: not a price (write e.g. \"/v1/chat/completions request = 21 sat\")")]
    Line(String),
    /// An unknown part.
    #[error("{0:?}: not a part of a price (request, output_1k or input_1k)")]
    Part(String),
}

/// Reads `<whole number> sat` or `<whole number> msat` (a bare number is refused: the unit
/// must be said) into millisatoshis.
pub fn parse_amount(text: &str) -> Result<u64, PriceError> {
    let bad = |why| PriceError::Amount {
        value: text.to_owned(),
        why,
    };
    let mut words = text.split_whitespace();
    let (Some(number), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err(bad("not a number and a unit"));
    };
    if number.starts_with('-') {
        return Err(bad("negative"));
    }
    if !number
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'e' | b'E'))
        || !number.bytes().any(|b| b.is_ascii_digit())
    {
        return Err(bad("not a number"));
    }
    if number.contains(['.', ',', 'e', 'E']) {
        return Err(bad("not a whole number"));
    }
    let n: u64 = number.parse().map_err(|_| bad("too large"))?;
    let msat = match unit {
        "sat" | "sats" => n
            .checked_mul(MSAT_PER_SAT)
            .ok_or_else(|| bad("too large"))?,
        "msat" | "msats" => n,
        _ => return Err(bad("the unit is neither sat nor msat")),
    };
    if msat > MAX_MSAT {
        return Err(bad("more than 21 million bitcoin"));
    }
    Ok(msat)
}

/// The price of generations on one route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    /// Per request, msat.
    pub request: u64,
    /// Per 1,000 output tokens, msat.
    pub output_1k: u64,
    /// Per 1,000 input tokens, msat.
    pub input_1k: u64,
}

/// Token counts of an answer, as the upstream reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
}

fn per_1k(price: u64, tokens: u64) -> u64 {
    // Rounded up: a fraction of a millisatoshi is charged as one.
    let m = u128::from(price) * u128::from(tokens);
    u64::try_from(m.div_ceil(1000)).unwrap_or(u64::MAX)
}

impl Price {
    /// Whether anything is charged.
    pub fn is_free(&self) -> bool {
        *self == Self::default()
    }

    /// The cost of an answer with `usage`, msat (never more than [`MAX_MSAT`]).
    pub fn cost(&self, usage: Usage) -> u64 {
        self.request
            .saturating_add(per_1k(self.output_1k, usage.output))
            .saturating_add(per_1k(self.input_1k, usage.input))
            .min(MAX_MSAT)
    }

    /// The most a request can cost: its input at most `input_tokens`, its output at most
    /// `max_tokens`, msat.
    pub fn reserve(&self, input_tokens: u64, max_tokens: u64) -> u64 {
        self.cost(Usage {
            input: input_tokens,
            output: max_tokens,
        })
    }
}

/// Prices by route (`/v1/chat/completions`, `/completion`, `/api/chat`, ...), with a default
/// for routes not named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prices {
    /// For routes not named.
    pub default: Price,
    /// By route.
    pub routes: BTreeMap<String, Price>,
}

impl Prices {
    /// The price on `route`.
    pub fn on(&self, route: &str) -> Price {
        self.routes
            .get(route.trim_end_matches('/'))
            .copied()
            .unwrap_or(self.default)
    }

    /// Reads price lines: `[route] part = amount`, where part is `request`, `output_1k` or
    /// `input_1k`, and route (absent: the default) starts with `/`. `#` starts a comment.
    pub fn parse(text: &str) -> Result<Self, (usize, PriceError)> {
        let mut prices = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            prices.set(line).map_err(|e| (n + 1, e))?;
        }
        Ok(prices)
    }

    /// Sets one price from `[route] part = amount`.
    pub fn set(&mut self, line: &str) -> Result<(), PriceError> {
        let Some((left, amount)) = line.split_once('=') else {
            return Err(PriceError::Line(line.to_owned()));
        };
        let msat = parse_amount(amount.trim())?;
        let mut words = left.split_whitespace();
        let (route, part) = match (words.next(), words.next(), words.next()) {
            (Some(route), Some(part), None) if route.starts_with('/') => (Some(route), part),
            (Some(part), None, None) => (None, part),
            _ => return Err(PriceError::Line(line.to_owned())),
        };
        let price = match route {
            Some(route) => self
                .routes
                .entry(route.trim_end_matches('/').to_owned())
                .or_insert(self.default),
            None => &mut self.default,
        };
        match part {
            "request" => price.request = msat,
            "output_1k" => price.output_1k = msat,
            "input_1k" => price.input_1k = msat,
            other => return Err(PriceError::Part(other.to_owned())),
        }
        Ok(())
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} msat per request, {} msat per 1,000 output tokens, {} msat per 1,000 input tokens",
            self.request, self.output_1k, self.input_1k
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_need_a_whole_number_and_a_unit() {
        assert_eq!(parse_amount("21 sat"), Ok(21_000));
        assert_eq!(parse_amount("500 msat"), Ok(500));
        assert_eq!(parse_amount(" 0 sat "), Ok(0));
        for (text, why) in [
            ("-1 sat", "negative"),
            ("1.5 sat", "not a whole number"),
            ("1e3 msat", "not a whole number"),
            ("21", "not a number and a unit"),
            ("21 btc", "neither sat nor msat"),
            ("99999999999999999999 sat", "too large"),
            ("2100000000000001 sat", "more than 21 million bitcoin"),
            ("ten sat", "not a number"),
        ] {
            let err = parse_amount(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains(text.trim()), "{err}");
        }
    }

    #[test]
    fn prices_by_route_with_a_default() {
        let prices = Prices::parse(
            "# the box\nrequest = 1 sat\n/v1/chat/completions output_1k = 50 sat\n\
             /v1/chat/completions input_1k = 500 msat\n",
        )
        .unwrap();
        let chat = prices.on("/v1/chat/completions/");
        assert_eq!(chat.request, 1000, "a route starts from the default");
        assert_eq!(chat.output_1k, 50_000);
        assert_eq!(prices.on("/completion").output_1k, 0);
        // 1 sat + 37 tokens at 50 sat/1k (1,850 msat) + 12 input at 0.5 sat/1k (6 msat)
        assert_eq!(
            chat.cost(Usage {
                input: 12,
                output: 37
            }),
            1000 + 1850 + 6
        );
        assert_eq!(chat.reserve(12, 100), 1000 + 5000 + 6);
        let cheap = Price {
            output_1k: 1,
            ..Price::default()
        };
        assert_eq!(
            cheap.cost(Usage {
                input: 0,
                output: 1
            }),
            1,
            "fractions round up"
        );
        let (line, err) = Prices::parse("request = 1 sat\nrequest = -2 sat").unwrap_err();
        assert_eq!(line, 2);
        assert!(err.to_string().contains("negative"));
        assert!(Prices::parse("/x bogus = 1 sat").is_err());
        assert!(Prices::parse("nonsense").is_err());
    }
}
