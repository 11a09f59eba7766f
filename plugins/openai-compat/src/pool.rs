//! One batch's calls, sent concurrently by a pool of scoped threads.
//!
//! There are `max_concurrency` workers (fewer for a small batch), each taking the next item
//! and blocking in the [`Limiter`] until a slot is free, so at most the current limit of
//! requests are in flight. Blocking I/O on a few dozen threads costs less than an async runtime
//! here and keeps the plugin free of one. An [`Abort`] (a refused key, an exhausted quota, no
//! server) stops the pool: workers take no new items, those waiting for a slot or to retry
//! wake up and quit without sending.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Mutex,
    },
    time::{Duration, Instant},
};

use karma_plugin_api::abi::{ErrorCode, PluginError};

use crate::{
    aimd::Limiter,
    client::{Abort, Call, CallError, Client, Stats, Stop},
    config::Settings,
};

/// How often a running batch updates the host's status line (`karma.host.progress/1`).
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// Status updates between two progress log lines (every 2 s).
const LOG_EVERY_STATUS: u32 = 4;

/// What `run` returns for each item: the call, or why this item failed.
pub type CallResult = Result<Call, PluginError>;

/// Sends every ready body and returns one result per entry of `bodies`, in order. `Err` only
/// when no item can succeed (see [`CallError::Abort`]) or no thread could be started.
pub fn run(
    settings: &Settings,
    client: &Client,
    limiter: &Limiter,
    bodies: Vec<Result<Vec<u8>, PluginError>>,
) -> Result<Vec<CallResult>, Abort> {
    let started = Instant::now();
    let pending: Vec<usize> =
        bodies.iter().enumerate().filter(|(_, body)| body.is_ok()).map(|(index, _)| index).collect();
    let total = pending.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let stats = Stats::default();
    let stop = Stop::default();
    let aborted: Mutex<Option<Abort>> = Mutex::new(None);
    let workers = limiter.max().min(total);
    let mut answered: Vec<Option<CallResult>> = (0..bodies.len()).map(|_| None).collect();

    let worker = || {
        let mut results = Vec::new();
        while !stop.is_stopped() {
            let Some(&index) = pending.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
            let Ok(body) = &bodies[index] else { continue };
            let result = client.call(settings, limiter, body, &stats, &stop);
            done.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(call) => results.push((index, Ok(call))),
                Err(CallError::Item(error)) => results.push((index, Err(error))),
                Err(CallError::Abort(abort)) => {
                    aborted.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(abort);
                    stop.stop();
                }
                Err(CallError::Stopped) => {}
            }
        }
        results
    };

    let spawned = std::thread::scope(|scope| {
        let (finished, ticks) = mpsc::channel::<()>();
        let (done, stats) = (&done, &stats);
        // Ticks every STATUS_EVERY until the batch is done (a send, or the sender dropped).
        let reporter = scope.spawn(move || {
            let mut tick = 0u32;
            while let Err(mpsc::RecvTimeoutError::Timeout) = ticks.recv_timeout(STATUS_EVERY) {
                karma_plugin_api::sdk::progress::report(&format!(
                    "{} requests in flight, {} retries, limit {}",
                    limiter.in_flight(),
                    stats.retries.load(Ordering::Relaxed),
                    limiter.limit()
                ));
                tick += 1;
                if tick % LOG_EVERY_STATUS != 0 {
                    continue;
                }
                tracing::info!(
                    model = %settings.model,
                    done = done.load(Ordering::Relaxed),
                    total,
                    in_flight = limiter.in_flight(),
                    retries = stats.retries.load(Ordering::Relaxed),
                    concurrency_limit = limiter.limit(),
                    "requests"
                );
            }
        });
        let mut handles = Vec::with_capacity(workers);
        for number in 0..workers {
            match std::thread::Builder::new()
                .name(format!("openai-compat-{number}"))
                .spawn_scoped(scope, worker)
            {
                Ok(handle) => handles.push(handle),
                // Fewer workers still finish the batch; none cannot.
                Err(error) if handles.is_empty() => {
                    stop.stop();
                    let _ = finished.send(());
                    let _ = reporter.join();
                    return Err(Abort {
                        error: PluginError::new(
                            ErrorCode::RESOURCE_EXHAUSTED,
                            format!("cannot start a request thread: {error}"),
                        ),
                        lasting: false,
                    });
                }
                Err(_) => break,
            }
        }
        for handle in handles {
            // A panicking worker re-raises here; the SDK's firewall turns it into an error.
            let results = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (index, result) in results {
                answered[index] = Some(result);
            }
        }
        let _ = finished.send(());
        let _ = reporter.join();
        karma_plugin_api::sdk::progress::report("");
        Ok(())
    });
    spawned?;
    if let Some(abort) = aborted.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()) {
        return Err(abort);
    }
    tracing::debug!(
        model = %settings.model,
        items = total,
        seconds = started.elapsed().as_secs_f64(),
        retries = stats.retries.load(Ordering::Relaxed),
        throttled = stats.throttled.load(Ordering::Relaxed),
        concurrency_limit = limiter.limit(),
        "batch done"
    );
    Ok(bodies
        .into_iter()
        .zip(answered)
        .map(|(body, answer)| match (body, answer) {
            (Err(error), _) => Err(error),
            (Ok(_), Some(result)) => result,
            (Ok(_), None) => Err(PluginError::new(ErrorCode::INTERNAL, "the request was never sent")),
        })
        .collect())
}
