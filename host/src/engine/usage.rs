//! What a dataset's model calls used: tokens, reasoning tokens and estimated cost, summed from
//! each answer's counts and its plugin details (`karma.model.item_details/1`).

use serde::Serialize;

/// The facts of one answer's details that the engine acts on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnswerFacts {
    pub finish_reason: Option<String>,
    /// Cut short by the token limit (`truncated`, or `finish_reason` `length`).
    pub truncated: bool,
    pub reasoning_tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

impl AnswerFacts {
    /// Reads `details` (a JSON object as text); unknown keys are ignored, a malformed document
    /// reads as no facts (the plugin boundary already checked it is an object).
    pub fn read(details: Option<&str>) -> Self {
        let Some(serde_json::Value::Object(map)) =
            details.and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        else {
            return AnswerFacts::default();
        };
        let finish_reason = map.get("finish_reason").and_then(|value| value.as_str()).map(str::to_owned);
        let truncated = map.get("truncated").and_then(|value| value.as_bool()).unwrap_or(false)
            || finish_reason.as_deref() == Some("length");
        AnswerFacts {
            truncated,
            finish_reason,
            reasoning_tokens: map.get("reasoning_tokens").and_then(|value| value.as_u64()),
            cost_usd: map.get("cost_usd").and_then(|value| value.as_f64()).filter(|cost| cost.is_finite()),
        }
    }
}

/// Token and cost totals of the calls a run made (answers served from the cache cost nothing
/// and are not counted).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Items sent to the model in this run and answered.
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Hidden reasoning tokens, part of `completion_tokens`.
    pub reasoning_tokens: u64,
    /// Sum of the plugin's estimates; `null` when no answer carried one.
    pub cost_usd: Option<f64>,
}

impl Usage {
    pub fn add(&mut self, prompt_tokens: Option<u64>, completion_tokens: Option<u64>, facts: &AnswerFacts) {
        self.calls += 1;
        self.prompt_tokens += prompt_tokens.unwrap_or(0);
        self.completion_tokens += completion_tokens.unwrap_or(0);
        self.reasoning_tokens += facts.reasoning_tokens.unwrap_or(0);
        if let Some(cost) = facts.cost_usd {
            *self.cost_usd.get_or_insert(0.0) += cost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_become_facts_and_sum_into_usage() {
        let facts = AnswerFacts::read(Some(
            r#"{"finish_reason":"length","reasoning_tokens":7,"cost_usd":0.25,"vendor":{"x":1}}"#,
        ));
        assert!(facts.truncated);
        assert_eq!(facts.reasoning_tokens, Some(7));
        let mut usage = Usage::default();
        usage.add(Some(10), Some(20), &facts);
        usage.add(Some(1), None, &AnswerFacts::read(None));
        assert_eq!(
            usage,
            Usage {
                calls: 2,
                prompt_tokens: 11,
                completion_tokens: 20,
                reasoning_tokens: 7,
                cost_usd: Some(0.25)
            }
        );
        assert!(!AnswerFacts::read(Some(r#"{"truncated":false,"finish_reason":"stop"}"#)).truncated);
        assert_eq!(AnswerFacts::read(Some("not json")), AnswerFacts::default());
    }
}
