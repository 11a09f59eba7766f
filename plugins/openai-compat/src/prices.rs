//! List prices of the registered models, for the `cost_usd` estimate of each item.
//!
//! USD per million tokens, from the providers' public pricing pages as of [`PRICES_AS_OF`]. It
//! is an estimate: prices change, and cached-input discounts, batch-API discounts and
//! long-context tiers (Claude and Gemini Pro above 200k prompt tokens) are not modelled. The
//! configuration key `price_per_mtok` (`{"input": f, "output": f}`) overrides this table; the
//! generic models have no price unless it is configured, and then report no `cost_usd`.

use serde::Deserialize;

/// When the table was checked.
pub const PRICES_AS_OF: &str = "2025-10-31";

/// USD per million input (prompt) and output (completion, reasoning included) tokens.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    /// The estimated cost of one call.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        (self.input * prompt_tokens as f64 + self.output * completion_tokens as f64) / 1_000_000.0
    }
}

const fn price(input: f64, output: f64) -> Price {
    Price { input, output }
}

/// Registry name → list price.
const TABLE: &[(&str, Price)] = &[
    ("gpt-4o", price(2.50, 10.00)),
    ("gpt-4o-mini", price(0.15, 0.60)),
    ("gpt-4.1", price(2.00, 8.00)),
    ("gpt-4.1-mini", price(0.40, 1.60)),
    ("o3", price(2.00, 8.00)),
    ("gpt-5", price(1.25, 10.00)),
    ("gpt-5-mini", price(0.25, 2.00)),
    ("gpt-5-nano", price(0.05, 0.40)),
    ("claude-sonnet-4-5", price(3.00, 15.00)),
    ("claude-haiku-4-5", price(1.00, 5.00)),
    ("gemini-2.5-flash", price(0.30, 2.50)),
    ("gemini-2.5-pro", price(1.25, 10.00)),
];

/// The list price of the model registered as `name`, if the table has one.
pub fn list_price(name: &str) -> Option<Price> {
    TABLE.iter().find(|(model, _)| *model == name).map(|(_, price)| *price)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_model_has_a_price_and_generic_ones_none() {
        for entry in crate::catalog::ENTRIES {
            assert_eq!(list_price(entry.name).is_some(), !entry.is_generic(), "{}", entry.name);
        }
    }

    #[test]
    fn cost_is_per_million_tokens() {
        let cost = list_price("gpt-4o-mini").map(|price| price.cost(1_000_000, 500_000));
        assert!((cost.unwrap_or_default() - (0.15 + 0.30)).abs() < 1e-12);
    }
}
