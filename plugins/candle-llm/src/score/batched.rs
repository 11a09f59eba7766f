//! Scoring on the batched decoder (llama, qwen2, qwen3).
//!
//! 1. The requests' contexts run as one left-padded prefill; the last column's logits score
//!    the first token of every continuation. A batch of MCQs scored by their option letters
//!    ends here: one forward of the contexts instead of one sequence per option.
//! 2. Continuations with more tokens then go on from the prefill's KV cache: its rows are
//!    copied once per such continuation ([`KvCache::select_rows`]) and their remaining tokens
//!    run as one batched step, right-padded to the longest (a causal mask keeps the padding
//!    after a token from reaching it). A continuation whose context is so long that the
//!    common step would run past the model's positions gets a step of its own.

use candle_core::{IndexOp, Tensor};

use super::{add_token, ContinuationLogprob, ScoreRequest};
use crate::arch::decoder::{left_pad, log_softmax, Decoder, KvCache, Step};

/// Hidden rows projected to logits at once in step 2: bounds the `[rows, vocab]` logits held
/// together (long continuations times a large vocabulary).
const LOGIT_ROWS: usize = 256;

fn error(error: candle_core::Error) -> String {
    error.to_string()
}

/// A continuation with tokens after its first: `row` in the prefill batch, `slot` in the
/// results.
struct Tail<'a> {
    row: usize,
    slot: (usize, usize),
    tokens: &'a [u32],
}

pub fn score(
    decoder: &Decoder,
    requests: &[ScoreRequest],
    pad: u32,
) -> Result<Vec<Vec<ContinuationLogprob>>, String> {
    let mut scores: Vec<Vec<ContinuationLogprob>> =
        requests.iter().map(|request| Vec::with_capacity(request.continuations.len())).collect();
    // A request without continuations needs no forward.
    let active: Vec<usize> =
        (0..requests.len()).filter(|&index| !requests[index].continuations.is_empty()).collect();
    if active.is_empty() {
        return Ok(scores);
    }
    let contexts: Vec<Vec<u32>> = active.iter().map(|&index| requests[index].context.clone()).collect();
    let (padded, padding) = left_pad(&contexts, pad);
    // Step 2 continues from the prefill's keys and values only for continuations of more than
    // one token; option letters need none kept.
    let continued =
        active.iter().any(|&index| requests[index].continuations.iter().any(|tokens| tokens.len() > 1));
    let mut cache = if continued { KvCache::default() } else { KvCache::not_kept() };
    let hidden = decoder.forward(&Step { tokens: &padded, padding: &padding }, &mut cache).map_err(error)?;
    let first = log_softmax(&decoder.last_logits(&hidden).map_err(error)?)
        .map_err(error)?
        .to_vec2::<f32>()
        .map_err(error)?;
    drop(hidden);
    let mut tails = Vec::new();
    for (row, &index) in active.iter().enumerate() {
        for (slot, continuation) in requests[index].continuations.iter().enumerate() {
            let mut total = ContinuationLogprob { logprob: 0.0, is_greedy: true };
            if let Some(&token) = continuation.first() {
                add_token(&mut total, &first[row], token)?;
            }
            scores[index].push(total);
            if continuation.len() > 1 {
                tails.push(Tail { row, slot: (index, slot), tokens: continuation });
            }
        }
    }
    let columns = tails.iter().map(|tail| tail.tokens.len() - 1).max().unwrap_or(0);
    let limit = decoder.config.max_positions;
    let (common, tight): (Vec<&Tail>, Vec<&Tail>) =
        tails.iter().partition(|tail| requests[tail.slot.0].context.len() + columns <= limit);
    let groups = std::iter::once(common).chain(tight.into_iter().map(|tail| vec![tail]));
    for group in groups.filter(|group| !group.is_empty()) {
        continue_tails(decoder, &cache, &padding, &group, pad, &mut scores)?;
    }
    Ok(scores)
}

/// Step 2 for `tails`: runs each one's tokens after the first from a copy of its context's
/// cache rows and adds the log-probabilities of the tokens they predict to `scores`.
fn continue_tails(
    decoder: &Decoder,
    cache: &KvCache,
    padding: &[usize],
    tails: &[&Tail<'_>],
    pad: u32,
    scores: &mut [Vec<ContinuationLogprob>],
) -> Result<(), String> {
    let rows: Vec<usize> = tails.iter().map(|tail| tail.row).collect();
    let mut cache = cache.select_rows(&rows).map_err(error)?;
    let columns = tails.iter().map(|tail| tail.tokens.len() - 1).max().unwrap_or(0);
    let tokens: Vec<Vec<u32>> = tails
        .iter()
        .map(|tail| {
            let fed = &tail.tokens[..tail.tokens.len() - 1];
            fed.iter().copied().chain(std::iter::repeat_n(pad, columns - fed.len())).collect()
        })
        .collect();
    let padding: Vec<usize> = rows.iter().map(|&row| padding[row]).collect();
    let hidden = decoder.forward(&Step { tokens: &tokens, padding: &padding }, &mut cache).map_err(error)?;
    drop(cache);
    let features = hidden.dim(2).map_err(error)?;
    let hidden = hidden.reshape((tails.len() * columns, features)).map_err(error)?;
    // (tail, predicted token) for each hidden row that predicts a real token, in order.
    let wanted: Vec<(usize, u32, u32)> = tails
        .iter()
        .enumerate()
        .flat_map(|(index, tail)| {
            tail.tokens[1..]
                .iter()
                .enumerate()
                .map(move |(offset, &token)| (index, (index * columns + offset) as u32, token))
        })
        .collect();
    for chunk in wanted.chunks(LOGIT_ROWS) {
        let picked: Vec<u32> = chunk.iter().map(|&(_, row, _)| row).collect();
        let picked = Tensor::from_vec(picked, chunk.len(), hidden.device()).map_err(error)?;
        let selected = hidden.index_select(&picked, 0).map_err(error)?.unsqueeze(0).map_err(error)?;
        let logits = decoder.all_logits(&selected).map_err(error)?.i(0).map_err(error)?;
        let logprobs = log_softmax(&logits).map_err(error)?.to_vec2::<f32>().map_err(error)?;
        for (&(index, _, token), row) in chunk.iter().zip(&logprobs) {
            let (request, slot) = tails[index].slot;
            let total = scores
                .get_mut(request)
                .and_then(|scores| scores.get_mut(slot))
                .ok_or_else(|| "a continuation's score is missing".to_owned())?;
            add_token(total, row, token)?;
        }
    }
    Ok(())
}
