//! The four baseline answering rules.

use karma_plugin_api::sdk::prelude::*;
use serde::Deserialize;

use crate::{NoConfig, Rule};

fn final_answer(letter: &str) -> String {
    format!("Final Answer: ({letter})")
}

fn no_options(item: &Item<'_>) -> PluginError {
    PluginError::new(
        ErrorCode::INVALID_INPUT,
        format!("item {} has no options (other_args.options is missing or empty)", item.id()),
    )
}

/// `karma/constant`: always the configured letter.
pub struct Constant {
    answer: String,
}

/// Configuration of [`Constant`].
#[derive(Deserialize)]
pub struct ConstantConfig {
    /// The letter (or text) to answer with.
    pub value: String,
}

impl Rule for Constant {
    type Config = ConstantConfig;

    fn new(config: ConstantConfig) -> Result<Self, PluginError> {
        if config.value.trim().is_empty() {
            return Err(PluginError::new(ErrorCode::INVALID_INPUT, "`value` must not be empty"));
        }
        Ok(Constant { answer: final_answer(&config.value) })
    }

    fn answer(&self, _item: &Item<'_>) -> Result<String, PluginError> {
        Ok(self.answer.clone())
    }
}

/// `karma/echo`: the input, or the last user turn of a conversation.
pub struct Echo;

impl Rule for Echo {
    type Config = NoConfig;

    fn new(_config: NoConfig) -> Result<Self, PluginError> {
        Ok(Echo)
    }

    fn answer(&self, item: &Item<'_>) -> Result<String, PluginError> {
        if let Some(input) = item.input() {
            return Ok(input.to_owned());
        }
        let last_user_turn = item.conversation().iter().rev().find(|turn| turn.role.as_str() == "user");
        Ok(last_user_turn.map(|turn| turn.content.as_str().to_owned()).unwrap_or_default())
    }
}

/// `karma/first-option`: the first option in display order.
pub struct FirstOption;

impl Rule for FirstOption {
    type Config = NoConfig;

    fn new(_config: NoConfig) -> Result<Self, PluginError> {
        Ok(FirstOption)
    }

    fn answer(&self, item: &Item<'_>) -> Result<String, PluginError> {
        let options = item.options()?;
        let (letter, _) = options.first().ok_or_else(|| no_options(item))?;
        Ok(final_answer(letter))
    }
}

/// `karma/random-option`: a uniform pick that depends only on the seed and the item's content,
/// so the same item gets the same answer whatever the batch size, order or cache state.
pub struct RandomOption {
    seed: u64,
}

/// Configuration of [`RandomOption`].
#[derive(Deserialize)]
pub struct RandomOptionConfig {
    /// Seed of the pick.
    pub seed: u64,
}

impl Rule for RandomOption {
    type Config = RandomOptionConfig;

    fn new(config: RandomOptionConfig) -> Result<Self, PluginError> {
        Ok(RandomOption { seed: config.seed })
    }

    fn answer(&self, item: &Item<'_>) -> Result<String, PluginError> {
        let options = item.options()?;
        if options.is_empty() {
            return Err(no_options(item));
        }
        let mut hash = fnv1a(self.seed.to_le_bytes().iter().copied(), FNV_OFFSET);
        hash = fnv1a(item.input().unwrap_or_default().bytes(), hash);
        hash = fnv1a(item.other_args_json().bytes(), hash);
        let index = uniform_index(splitmix64(hash), options.len());
        Ok(final_answer(&options[index].0))
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: impl Iterator<Item = u8>, mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Mixes the FNV hash so nearby inputs give unrelated picks.
fn splitmix64(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Maps a 64-bit value to `0..len` without modulo bias (Lemire's multiply-shift; the bias is
/// below 2^-58 for any realistic option count).
fn uniform_index(value: u64, len: usize) -> usize {
    ((u128::from(value) * len as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_index_stays_in_range_and_covers_it() {
        let mut seen = [0usize; 4];
        for value in 0..4000u64 {
            seen[uniform_index(splitmix64(value), 4)] += 1;
        }
        // Each of 4 options gets about 1000 of 4000 picks; 800..1200 is > 6 sigma wide.
        assert!(seen.iter().all(|&count| (800..1200).contains(&count)), "{seen:?}");
    }
}
