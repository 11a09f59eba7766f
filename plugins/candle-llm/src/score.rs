//! Log-likelihood scoring: the summed log-probability of each continuation after its context,
//! and whether greedy decoding would have produced it (lm-eval-harness's `loglikelihood`).
//!
//! A request is one context with several continuations (an MCQ's option letters). [`score`]
//! runs each context once, whatever its number of continuations: the logits at the context's
//! last position give every continuation's first token, so single-token continuations (option
//! letters) cost one forward of the context and nothing else. Longer continuations go on from
//! the context's KV state instead of prefilling it again ([`batched`] for the batched decoder,
//! [`score_single`] for the one-sequence families).
//!
//! [`score_separately`] is the former path, one sequence per (context, continuation) pair. It
//! stays as the reference the equality tests and the benchmark compare against.

mod batched;

use candle_core::{Device, IndexOp, Tensor};

use crate::{
    arch::{
        decoder::{left_pad, log_softmax, KvCache, Step},
        single::SingleSequenceModel,
    },
    generate::Network,
};

/// One context and the continuations to score after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreRequest {
    pub context: Vec<u32>,
    pub continuations: Vec<Vec<u32>>,
}

/// The log-probability of a continuation after its context, and whether greedy decoding would
/// have produced it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContinuationLogprob {
    pub logprob: f64,
    pub is_greedy: bool,
}

/// Scores every continuation of every request; the result has one list per request, in the
/// order of its continuations.
pub fn score(
    network: &mut Network,
    requests: &[ScoreRequest],
    pad: u32,
) -> Result<Vec<Vec<ContinuationLogprob>>, String> {
    let limit = network.max_positions();
    for request in requests {
        for continuation in &request.continuations {
            check(&request.context, continuation, limit)?;
        }
    }
    match network {
        Network::Batched(decoder) => batched::score(decoder, requests, pad),
        Network::Single { model, device, .. } => {
            requests.iter().map(|request| score_single(model, device, request)).collect()
        }
    }
}

/// The former path: each `(context, continuation)` pair is its own sequence (the batched
/// families run all of them as one left-padded forward), so a context is prefilled once per
/// continuation.
pub fn score_separately(
    network: &mut Network,
    pairs: &[(Vec<u32>, Vec<u32>)],
    pad: u32,
) -> Result<Vec<ContinuationLogprob>, String> {
    let error = |error: candle_core::Error| error.to_string();
    let limit = network.max_positions();
    for (context, continuation) in pairs {
        check(context, continuation, limit)?;
    }
    let longest =
        pairs.iter().map(|(context, continuation)| context.len() + continuation.len()).max().unwrap_or(0);
    match network {
        Network::Batched(decoder) => {
            if pairs.is_empty() {
                return Ok(Vec::new());
            }
            let joined: Vec<Vec<u32>> = pairs
                .iter()
                .map(|(context, continuation)| [context.as_slice(), continuation].concat())
                .collect();
            let (padded, padding) = left_pad(&joined, pad);
            let hidden = decoder
                .forward(&Step { tokens: &padded, padding: &padding }, &mut KvCache::default())
                .map_err(error)?;
            pairs
                .iter()
                .enumerate()
                .map(|(row, (_, continuation))| {
                    // The column before each continuation token predicts it.
                    let first = longest - continuation.len() - 1;
                    let rows =
                        hidden.i(row).map_err(error)?.narrow(0, first, continuation.len()).map_err(error)?;
                    let logits = decoder.all_logits(&rows.unsqueeze(0).map_err(error)?).map_err(error)?;
                    sum_logprobs(&logits.squeeze(0).map_err(error)?, continuation)
                })
                .collect()
        }
        Network::Single { model, device, .. } => pairs
            .iter()
            .map(|(context, continuation)| {
                let mut rows = vec![model.forward(context, 0, device).map_err(error)?];
                for (offset, token) in continuation[..continuation.len() - 1].iter().enumerate() {
                    rows.push(model.forward(&[*token], context.len() + offset, device).map_err(error)?);
                }
                let logits = Tensor::stack(&rows, 0).map_err(error)?;
                sum_logprobs(&logits, continuation)
            })
            .collect(),
    }
}

/// Refuses what cannot be scored: an empty side, or more tokens than the model has positions.
fn check(context: &[u32], continuation: &[u32], limit: usize) -> Result<(), String> {
    if context.is_empty() || continuation.is_empty() {
        return Err(format!(
            "cannot score: the context has {} tokens and the continuation {} (both need at least one)",
            context.len(),
            continuation.len()
        ));
    }
    let total = context.len() + continuation.len();
    if total > limit {
        return Err(format!("cannot score: {total} tokens exceed the model's {limit} positions"));
    }
    Ok(())
}

/// One request on a one-sequence model (gemma3, phi3). Their KV cache lives inside
/// candle-transformers' model and can only be cleared, not cut back, so the context is run once
/// for all single-token continuations and the first longer one, which extends that state; each
/// further longer continuation has to run the context again.
fn score_single(
    model: &mut SingleSequenceModel,
    device: &Device,
    request: &ScoreRequest,
) -> Result<Vec<ContinuationLogprob>, String> {
    let error = |error: candle_core::Error| error.to_string();
    if request.continuations.is_empty() {
        return Ok(Vec::new());
    }
    let context = &request.context;
    let after_context = model.forward(context, 0, device).map_err(error)?;
    // Whether the model's cache holds exactly the context.
    let mut at_context_end = true;
    request
        .continuations
        .iter()
        .map(|continuation| {
            let mut rows = vec![after_context.clone()];
            if continuation.len() > 1 {
                if !at_context_end {
                    model.forward(context, 0, device).map_err(error)?;
                }
                at_context_end = false;
                for (offset, token) in continuation[..continuation.len() - 1].iter().enumerate() {
                    rows.push(model.forward(&[*token], context.len() + offset, device).map_err(error)?);
                }
            }
            let logits = Tensor::stack(&rows, 0).map_err(error)?;
            sum_logprobs(&logits, continuation)
        })
        .collect()
}

/// Sums the log-probabilities of `tokens` from logits `[tokens, vocab]` predicting them.
fn sum_logprobs(logits: &Tensor, tokens: &[u32]) -> Result<ContinuationLogprob, String> {
    let error = |error: candle_core::Error| error.to_string();
    let logprobs = log_softmax(logits).map_err(error)?.to_vec2::<f32>().map_err(error)?;
    let mut total = ContinuationLogprob { logprob: 0.0, is_greedy: true };
    for (row, &token) in logprobs.iter().zip(tokens) {
        add_token(&mut total, row, token)?;
    }
    Ok(total)
}

/// Adds `token`'s log-probability from one log-softmax row to `total`, and whether it is the
/// row's argmax (the last of equal maxima, as the former path picked it).
fn add_token(total: &mut ContinuationLogprob, row: &[f32], token: u32) -> Result<(), String> {
    let logprob =
        row.get(token as usize).ok_or_else(|| format!("token {token} is outside the model's vocabulary"))?;
    total.logprob += f64::from(*logprob);
    let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(index, _)| index as u32);
    total.is_greedy &= best == Some(token);
    Ok(())
}
