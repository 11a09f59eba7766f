//! The grading stage, between extraction and metrics: answers of a dataset whose family has a
//! grader go to a judge model (any registered model, with its own plugin instance) before they
//! are scored. HealthBench's grader asks the judge once per (answer, rubric criterion).
//!
//! Judge outputs have their own cache namespace: the key is the judge model, its plugin and
//! configuration, the grader (`grader:rubric/<template version>`) and the whole judge prompt
//! (conversation, answer and criterion), so a changed answer or template is graded afresh. Only
//! replies that parse as a verdict are cached: a reply without one is a judge failure, and a
//! rerun asks again. A judge failure fails its answer (counted in `num_failed` and
//! `num_judge_failed`); it is never read as "not met".

use serde::Serialize;

use super::usage::{AnswerFacts, Usage};
use crate::{
    cache::{item_key, Cache, CacheKey, CachedOutput, KeyContext, NewOutput},
    datasets::{
        item::{ConversationTurn, OwnedItem},
        task::RubricReference,
    },
    grading::rubric::{grader_prompt, parse_verdict, Turn, GRADER_SYSTEM_MESSAGE, GRADER_TEMPLATE_VERSION},
    plugins::{Backend, RegisteredModel},
};

/// The extraction id judge outputs are stored under (they carry no extraction).
const JUDGE_EXTRACTOR: &str = "judge_verdict";

/// The judge model of a run, resolved before anything loads.
pub struct JudgePlan<'a> {
    pub model: &'a RegisteredModel,
    /// Merged configuration (metadata defaults < `--judge-args`).
    pub config: serde_json::Value,
    pub plugin_id: String,
    pub plugin_version: String,
    /// Judge prompts per plugin call.
    pub batch_size: usize,
}

impl JudgePlan<'_> {
    /// The model side of every judge cache key.
    pub fn key_context(&self) -> KeyContext {
        let config = super::plan::answer_config(self.model, &self.config);
        KeyContext::new(&self.model.meta.name, &self.plugin_id, &self.plugin_version, &config)
            .scored_by(&format!("grader:rubric/{GRADER_TEMPLATE_VERSION}"))
    }
}

/// The judge during a run: its backend, loaded on first use.
pub struct Judge<'a> {
    pub plan: &'a JudgePlan<'a>,
    pub backend: &'a mut dyn Backend,
    pub loaded: bool,
}

/// One answer to grade.
pub struct Answer<'a> {
    /// The system prompt the model was given: the judge sees it as the conversation's first
    /// turn, as simple-evals grades the messages actually sent.
    pub system_prompt: Option<&'a str>,
    pub conversation: &'a [ConversationTurn],
    pub response: &'a str,
    pub rubric: &'a RubricReference,
}

/// The judge's verdict on one criterion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriterionVerdict {
    pub criteria_met: bool,
    pub explanation: String,
    pub from_cache: bool,
}

/// Every criterion's verdict for one answer, or why it could not be graded.
pub type Grades = Result<Vec<CriterionVerdict>, String>;

/// How much of a reply without a verdict a failure message quotes.
const REPLY_EXCERPT_CHARS: usize = 200;

/// What the judge did for one dataset, reported apart from the candidate's usage.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JudgeReport {
    pub model: String,
    /// Judge prompts answered from the cache.
    pub cache_hits: u64,
    /// Answers that could not be graded (a judge call failed or gave no verdict).
    pub num_judge_failed: u64,
    /// The judge calls this run made.
    pub usage: Usage,
}

/// The number of judge calls `rubric` needs for one answer.
pub fn calls_for(rubric: &RubricReference) -> u64 {
    rubric.criteria.len() as u64
}

/// Grades `answers`: per answer, every criterion's verdict in rubric order, or why it could not
/// be graded; `None` for an answer the judge was not asked about because of an interruption
/// (neither scored nor counted as failed). Cached verdicts are reused when `read_cache` (not
/// under `--refresh-cache`); new ones are stored whenever there is a cache. `Err` when the
/// judge cannot be used at all (it does not load, its credentials are refused): the dataset
/// stops.
pub fn grade(
    judge: &mut Judge<'_>,
    answers: &[Answer<'_>],
    mut cache: Option<&mut Cache>,
    read_cache: bool,
    report: &mut JudgeReport,
) -> Result<Vec<Option<Grades>>, String> {
    let context = judge.plan.key_context();
    // One judge item per (answer, criterion), in order.
    let mut owners = Vec::new();
    let mut items = Vec::new();
    for (answer_index, answer) in answers.iter().enumerate() {
        let system = answer.system_prompt.map(|content| Turn { role: "system", content });
        let turns: Vec<Turn<'_>> = system
            .into_iter()
            .chain(answer.conversation.iter().map(|turn| Turn { role: &turn.role, content: &turn.content }))
            .collect();
        for criterion in &answer.rubric.criteria {
            items.push(OwnedItem {
                id: items.len() as u64,
                system_prompt: Some(GRADER_SYSTEM_MESSAGE.to_owned()),
                input: Some(grader_prompt(&turns, answer.response, criterion)),
                other_args: "{}".to_owned(),
                ..OwnedItem::default()
            });
            owners.push(answer_index);
        }
    }
    let keys: Vec<CacheKey> = items.iter().map(|item| item_key(&context, item, false)).collect();
    let mut verdicts: Vec<Option<Result<CriterionVerdict, String>>> = vec![None; items.len()];
    if let (Some(cache), true) = (cache.as_deref(), read_cache) {
        let hits = cache
            .get_outputs_with_extractions(&keys, JUDGE_EXTRACTOR, 1)
            .map_err(|error| error.to_string())?;
        for (slot, key) in verdicts.iter_mut().zip(&keys) {
            if let Some((output, _)) = hits.get(key) {
                if let Ok(verdict) = parse_verdict(&output.raw_output) {
                    report.cache_hits += 1;
                    *slot = Some(Ok(CriterionVerdict {
                        criteria_met: verdict.criteria_met,
                        explanation: verdict.explanation,
                        from_cache: true,
                    }));
                }
            }
        }
    }
    let misses: Vec<usize> = (0..items.len()).filter(|index| verdicts[*index].is_none()).collect();
    for batch in misses.chunks(judge.plan.batch_size.max(1)) {
        // After Ctrl-C the remaining prompts stay unasked: their answers are left out.
        if super::interrupted() {
            break;
        }
        call_judge(judge, &items, &keys, batch, &mut verdicts, cache.as_deref_mut(), report)?;
    }
    let mut graded: Vec<Option<Grades>> = answers.iter().map(|_| Some(Ok(Vec::new()))).collect();
    for (owner, verdict) in owners.into_iter().zip(verdicts) {
        let Some(verdict) = verdict else {
            graded[owner] = None;
            continue;
        };
        let total = answers[owner].rubric.criteria.len();
        if let Some(grades) = &mut graded[owner] {
            match (&mut *grades, verdict) {
                (Ok(list), Ok(verdict)) => list.push(verdict),
                (Ok(list), Err(reason)) => {
                    let criterion = list.len() + 1;
                    *grades = Err(format!("judge failed on criterion {criterion} of {total}: {reason}"));
                }
                (Err(_), _) => {}
            }
        }
    }
    report.num_judge_failed += graded.iter().filter(|grades| matches!(grades, Some(Err(_)))).count() as u64;
    Ok(graded)
}

/// Sends one batch of judge prompts, records their verdicts and commits the parsed ones.
fn call_judge(
    judge: &mut Judge<'_>,
    items: &[OwnedItem],
    keys: &[CacheKey],
    batch: &[usize],
    verdicts: &mut [Option<Result<CriterionVerdict, String>>],
    cache: Option<&mut Cache>,
    report: &mut JudgeReport,
) -> Result<(), String> {
    let name = &judge.plan.model.meta.name;
    if !judge.loaded {
        judge.backend.load().map_err(|error| format!("the judge `{name}` failed to load: {error}"))?;
        judge.loaded = true;
    }
    let prompts: Vec<&OwnedItem> = batch.iter().map(|index| &items[*index]).collect();
    let outputs = match judge.backend.generate(&prompts, false) {
        Ok(outputs) => outputs,
        Err(error) if error.stops_dataset() => {
            return Err(format!("the judge `{name}` cannot be used: {error}"))
        }
        Err(error) => {
            let message = crate::report::redact_text(&error.to_string());
            for index in batch {
                verdicts[*index] = Some(Err(message.clone()));
            }
            return Ok(());
        }
    };
    let mut stored = Vec::new();
    for (index, output) in batch.iter().zip(outputs) {
        verdicts[*index] = Some(match output {
            Err(failure) => Err(crate::report::redact_text(&failure.to_string())),
            Ok(completion) => {
                report.usage.add(
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    &AnswerFacts::read(completion.details.as_deref()),
                );
                match parse_verdict(&completion.text) {
                    Err(problem) => {
                        Err(no_verdict(&problem, &completion.text, completion.details.as_deref()))
                    }
                    Ok(verdict) => {
                        stored.push(NewOutput {
                            key: keys[*index],
                            model: name,
                            output: CachedOutput {
                                raw_output: completion.text,
                                prompt_tokens: completion.prompt_tokens,
                                completion_tokens: completion.completion_tokens,
                                latency_us: completion.latency_us,
                                details: completion.details,
                            },
                        });
                        Ok(CriterionVerdict {
                            criteria_met: verdict.criteria_met,
                            explanation: verdict.explanation,
                            from_cache: false,
                        })
                    }
                }
            }
        });
    }
    if let (Some(cache), false) = (cache, stored.is_empty()) {
        cache.store_batch(&stored, &[], JUDGE_EXTRACTOR, 1).map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Why a reply is not a verdict, quoting its start, and saying so when it was cut short.
fn no_verdict(problem: &str, reply: &str, details: Option<&str>) -> String {
    let mut excerpt: String = reply.chars().take(REPLY_EXCERPT_CHARS).collect();
    if excerpt.len() < reply.len() {
        excerpt.push_str("...");
    }
    let mut message = format!("the judge's reply has no verdict ({problem}); it began {excerpt:?}");
    if AnswerFacts::read(details).truncated {
        message.push_str("; it was cut short by the judge's token limit: raise max_tokens in --judge-args");
    }
    message
}
