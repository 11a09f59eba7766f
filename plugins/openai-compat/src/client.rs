//! One API call: the request, its retries, and what its outcome means for the item.
//!
//! * 2xx: the answer, parsed. A body that is not the expected JSON is `UNAVAILABLE` at once,
//!   not retried: it is what the server deterministically answers to this request.
//! * 429, 408, 5xx, timeouts, refused or dropped connections: retried with back-off (see
//!   [`crate::retry`]), honouring `Retry-After`/`retry-after-ms`, up to `retries` attempts and
//!   `retry_max_s` seconds; then `UNAVAILABLE`.
//! * 401, 403, and a 429 whose error is `insufficient_quota` (OpenAI's exhausted account):
//!   [`CallError::Abort`]; the whole batch stops.
//! * Other 4xx: `INVALID_INPUT` with the status and the server's message, never retried.
//! * Until the server has answered once (any status), a host name that does not resolve, and
//!   [`CONNECT_FAILURES`] failed connections in all, are [`CallError::Abort`] too: a typo in
//!   `base_url` or a server that is not running, not something each item should retry. Once
//!   it has answered, they are retried per item like any transient failure.
//!
//! Each attempt holds a [`Limiter`] slot only while its request is in flight, not while it
//! waits to retry, so the other items keep the server busy.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        Condvar, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use karma_plugin_api::abi::{ErrorCode, PluginError};

use crate::{
    aimd::{Limiter, Outcome, Permit},
    config::Settings,
    key,
    protocol::{self, Answer},
    retry::{self, Backoff, Rng},
};

/// How much of a server's error message is kept.
const MESSAGE_LIMIT: usize = 300;
/// The largest error body read.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// The largest answer body read.
const ANSWER_BODY_LIMIT: u64 = 64 * 1024 * 1024;
/// Failed connections, none answered, after which an instance stops calling: the server is not
/// there.
pub const CONNECT_FAILURES: u32 = 8;

/// A successful call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub answer: Answer,
    /// HTTP attempts made, the successful one included.
    pub attempts: u32,
    /// From the first attempt to the answer, back-off included.
    pub latency: Duration,
}

/// Why a call gave no answer.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    /// This item failed; the others go on.
    Item(PluginError),
    /// No other item can succeed either (a refused key, an exhausted quota, no server): the
    /// whole run fails. The call has already raised the batch's [`Stop`].
    Abort(Abort),
    /// The batch was stopped before this call finished.
    Stopped,
}

/// The error that ends a whole run.
#[derive(Clone, Debug, PartialEq)]
pub struct Abort {
    /// `UNAUTHENTICATED`: the code on which the host stops the dataset.
    pub error: PluginError,
    /// Whether it holds for the instance's lifetime (a refused key, an exhausted quota), so
    /// later batches fail at once; an unresolved host or an absent server is probed again.
    pub lasting: bool,
}

/// Counters shared by the calls of a batch, for progress lines.
#[derive(Debug, Default)]
pub struct Stats {
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
}

/// Lets one call's failure stop the others, waking any that wait to retry.
#[derive(Debug, Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl Stop {
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        self.changed.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sleeps for `duration` or until stopped; `true` when stopped.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut stopped = self.stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = match self.changed.wait_timeout(stopped, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

/// What one attempt produced.
enum Attempt {
    Answer(Vec<u8>),
    Status {
        status: u16,
        hint: Option<Duration>,
        body: Vec<u8>,
    },
    /// The host name did not resolve.
    Unresolved(String),
    /// No connection, or one dropped before any response: worth retrying, but counted towards
    /// [`CONNECT_FAILURES`] while the server has never answered.
    Unconnected(String),
    /// Timeouts and unreadable answers: worth retrying.
    Transient(String),
    /// Errors that would repeat (bad URL, TLS failure).
    Fatal(String),
}

/// Sends requests for one instance.
pub struct Client {
    agent: ureq::Agent,
    headers: Vec<(String, String)>,
    backoff: Backoff,
    /// The host of `base_url`, for messages.
    host: String,
    /// `host:port` of the proxy the requests go through, if any.
    proxy: Option<String>,
    /// Whether the server has answered (any HTTP status) a request of this instance.
    answered: AtomicBool,
    /// Connections that failed before the first answer.
    connect_failures: AtomicU32,
}

impl Client {
    /// An agent that keeps up to `max_concurrency` connections alive, goes through the proxy
    /// the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, minus `NO_PROXY`), and
    /// gives each attempt `timeout_s`. No network I/O happens here.
    pub fn new(settings: &Settings) -> Self {
        let uri = settings.url.parse::<ureq::http::Uri>().ok();
        let proxy = ureq::Proxy::try_from_env();
        let via = proxy
            .as_ref()
            .filter(|proxy| uri.as_ref().is_none_or(|uri| !proxy.is_no_proxy(uri)))
            .map(|proxy| format!("{}:{}", proxy.host(), proxy.port()));
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .max_idle_connections(settings.max_concurrency.max(10))
            .max_idle_connections_per_host(settings.max_concurrency)
            .max_idle_age(Duration::from_secs(60))
            .proxy(proxy)
            .user_agent(concat!("karma-plugin-openai-compat/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            headers: protocol::headers(settings),
            backoff: Backoff::default(),
            host: uri.as_ref().and_then(|uri| uri.host()).unwrap_or_default().to_owned(),
            proxy: via,
            answered: AtomicBool::new(false),
            connect_failures: AtomicU32::new(0),
        }
    }

    /// Sends `body` until it is answered, fails for good, or `stop` is raised.
    pub fn call(
        &self,
        settings: &Settings,
        limiter: &Limiter,
        body: &[u8],
        stats: &Stats,
        stop: &Stop,
    ) -> Result<Call, CallError> {
        let started = Instant::now();
        let mut rng = Rng::new();
        let mut attempts = 0;
        loop {
            if stop.is_stopped() {
                return Err(CallError::Stopped);
            }
            let permit = limiter.acquire();
            // Waiting for a slot can take long: the batch may have stopped meanwhile.
            if stop.is_stopped() {
                limiter.release(permit, Outcome::Neutral);
                return Err(CallError::Stopped);
            }
            attempts += 1;
            let attempt = self.send(settings, body);
            let (last_error, hint) = match attempt {
                Attempt::Answer(bytes) => {
                    limiter.release(permit, Outcome::Success);
                    return match protocol::parse(settings.protocol, &bytes) {
                        Ok(answer) => Ok(Call { answer, attempts, latency: started.elapsed() }),
                        Err(problem) => Err(CallError::Item(PluginError::new(
                            ErrorCode::UNAVAILABLE,
                            key::scrub(
                                settings.key.as_ref(),
                                &format!(
                                    "`{}` sent an unusable answer: {}",
                                    settings.model,
                                    protocol::truncate(&problem, MESSAGE_LIMIT)
                                ),
                            ),
                        ))),
                    };
                }
                Attempt::Status { status, hint, body } => {
                    let message =
                        key::scrub(settings.key.as_ref(), &protocol::error_message(&body, MESSAGE_LIMIT));
                    if status == 401 || status == 403 {
                        let error = unauthenticated(settings, status, &message);
                        return Err(abort(stop, limiter, permit, error, true));
                    }
                    if status == 429 && retry::quota_exhausted(&body) {
                        return Err(abort(stop, limiter, permit, quota_exhausted(settings, &message), true));
                    }
                    limiter
                        .release(permit, if status == 429 { Outcome::Throttled } else { Outcome::Neutral });
                    if !retry::retryable_status(status) {
                        return Err(CallError::Item(PluginError::new(
                            ErrorCode::INVALID_INPUT,
                            format!("`{}` answered HTTP {status}: {message}", settings.model),
                        )));
                    }
                    if status == 429 {
                        stats.throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    (format!("HTTP {status}: {message}"), hint)
                }
                Attempt::Unresolved(problem) => {
                    if !self.answered.load(Ordering::SeqCst) {
                        let error = self.unresolved(settings, &problem);
                        return Err(abort(stop, limiter, permit, error, false));
                    }
                    limiter.release(permit, Outcome::Neutral);
                    (problem, None)
                }
                Attempt::Unconnected(problem) => {
                    if !self.answered.load(Ordering::SeqCst)
                        && self.connect_failures.fetch_add(1, Ordering::SeqCst) + 1 >= CONNECT_FAILURES
                    {
                        let error = self.unreachable(settings, &problem);
                        return Err(abort(stop, limiter, permit, error, false));
                    }
                    limiter.release(permit, Outcome::Neutral);
                    (problem, None)
                }
                Attempt::Transient(problem) => {
                    limiter.release(permit, Outcome::Neutral);
                    (problem, None)
                }
                Attempt::Fatal(problem) => {
                    limiter.release(permit, Outcome::Neutral);
                    return Err(CallError::Item(PluginError::new(
                        ErrorCode::UNAVAILABLE,
                        key::scrub(
                            settings.key.as_ref(),
                            &format!("`{}` cannot be reached: {problem}", settings.model),
                        ),
                    )));
                }
            };
            let delay = self.backoff.delay(attempts, hint, &mut rng);
            let give_up = |why: &str| {
                CallError::Item(PluginError::new(
                    ErrorCode::UNAVAILABLE,
                    key::scrub(
                        settings.key.as_ref(),
                        &format!(
                            "`{}` gave up after {attempts} attempt{} in {:.1} s ({why}): last error: {last_error}",
                            settings.model,
                            if attempts == 1 { "" } else { "s" },
                            started.elapsed().as_secs_f64()
                        ),
                    ),
                ))
            };
            if attempts >= settings.attempts {
                return Err(give_up("retries exhausted"));
            }
            if started.elapsed() + delay > settings.retry_budget {
                return Err(give_up("retry_max_s would be exceeded"));
            }
            if last_error.starts_with("HTTP 429") {
                tracing::debug!(model = %settings.model, attempt = attempts, delay_ms = delay.as_millis() as u64, "HTTP 429: backing off");
            } else {
                tracing::debug!(model = %settings.model, attempt = attempts, delay_ms = delay.as_millis() as u64, error = %last_error, "retrying");
            }
            stats.retries.fetch_add(1, Ordering::Relaxed);
            if stop.sleep(delay) {
                return Err(CallError::Stopped);
            }
        }
    }

    /// One HTTP request.
    fn send(&self, settings: &Settings, body: &[u8]) -> Attempt {
        let mut request = self.agent.post(&settings.url);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = match request.send(body) {
            Ok(response) => response,
            Err(error) => return classify(error, settings),
        };
        self.answered.store(true, Ordering::SeqCst);
        let status = response.status().as_u16();
        let header = |name: &str| {
            response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
        };
        let hint = retry::retry_after(
            header("retry-after-ms").as_deref(),
            header("retry-after").as_deref(),
            SystemTime::now(),
        );
        if (200..300).contains(&status) {
            return match response.body_mut().with_config().limit(ANSWER_BODY_LIMIT).read_to_vec() {
                Ok(bytes) => Attempt::Answer(bytes),
                Err(error) => classify(error, settings),
            };
        }
        let body =
            response.body_mut().with_config().limit(ERROR_BODY_LIMIT).read_to_vec().unwrap_or_default();
        Attempt::Status { status, hint, body }
    }

    /// The host of `base_url` (or of the proxy) does not resolve.
    fn unresolved(&self, settings: &Settings, problem: &str) -> PluginError {
        let message = match &self.proxy {
            Some(proxy) => format!(
                "cannot resolve the host of the proxy {proxy} named in the environment (ALL_PROXY, \
                 HTTPS_PROXY, HTTP_PROXY) for `{}`: {problem}; check the proxy variables",
                settings.model
            ),
            None => format!(
                "cannot resolve host {} of base_url {} for `{}`: {problem}; check the base_url",
                self.host, settings.base_url, settings.model
            ),
        };
        PluginError::new(ErrorCode::UNAUTHENTICATED, message)
    }

    /// [`CONNECT_FAILURES`] connections failed and none was ever answered.
    fn unreachable(&self, settings: &Settings, problem: &str) -> PluginError {
        let via = match &self.proxy {
            Some(proxy) => format!(" through the proxy {proxy}"),
            None => String::new(),
        };
        PluginError::new(
            ErrorCode::UNAUTHENTICATED,
            format!(
                "cannot connect to {}{via} for `{}`: {problem}; is the server running? \
                 ({CONNECT_FAILURES} connection attempts failed, none was answered)",
                settings.base_url, settings.model
            ),
        )
    }
}

/// Ends the batch with `error`: raises `stop` first, then frees the slot (no AIMD change), so a
/// call woken by the freed slot sees the stop and sends nothing.
fn abort(stop: &Stop, limiter: &Limiter, permit: Permit, error: PluginError, lasting: bool) -> CallError {
    stop.stop();
    limiter.release(permit, Outcome::Neutral);
    CallError::Abort(Abort { error, lasting })
}

/// Whether an I/O error is a failed host name lookup (std's `getaddrinfo` error).
fn is_lookup_failure(error: &std::io::Error) -> bool {
    error.to_string().starts_with("failed to lookup address information")
}

/// Transport errors: timeouts and connection trouble are transient, the rest would repeat.
fn classify(error: ureq::Error, settings: &Settings) -> Attempt {
    match error {
        ureq::Error::Timeout(_) => {
            Attempt::Transient(format!("no answer within timeout_s ({} s)", settings.timeout.as_secs_f64()))
        }
        ureq::Error::Io(error) if is_lookup_failure(&error) => Attempt::Unresolved(error.to_string()),
        ureq::Error::HostNotFound => Attempt::Unresolved("host not found".to_owned()),
        ureq::Error::Io(error) => Attempt::Unconnected(format!("connection error: {error}")),
        ureq::Error::ConnectionFailed => Attempt::Unconnected("connection failed".to_owned()),
        ureq::Error::Protocol(error) => Attempt::Transient(format!("bad HTTP from the server: {error}")),
        other => Attempt::Fatal(other.to_string()),
    }
}

/// OpenAI's 429 `insufficient_quota`: the account has no credit left.
fn quota_exhausted(settings: &Settings, message: &str) -> PluginError {
    PluginError::new(
        ErrorCode::UNAUTHENTICATED,
        format!(
            "HTTP 429: the account's quota is exhausted for `{}` (insufficient_quota): no request can \
             succeed until credit is added or the limit raised in the provider's billing settings; \
             server said: {message}",
            settings.model
        ),
    )
}

fn unauthenticated(settings: &Settings, status: u16, message: &str) -> PluginError {
    let what = if status == 401 { "refused the credentials" } else { "forbade the request" };
    let key = match &settings.key_env {
        Some(variable) => format!("check the key in {variable}"),
        None => {
            "no key was sent (api_key_env is \"\"): set api_key_env to the variable that holds one".to_owned()
        }
    };
    PluginError::new(
        ErrorCode::UNAUTHENTICATED,
        format!(
            "HTTP {status}: {} {what} for `{}` ({key}); server said: {message}",
            settings.url, settings.model
        ),
    )
}
