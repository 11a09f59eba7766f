//! When to try a call again: which failures are worth it, the server's `Retry-After` hint, and
//! exponential back-off with jitter.
//!
//! Without a hint the wait is "full jitter": uniform in `[0, min(cap, base * 2^(n-1)))` for the
//! n-th retry, so clients that failed together do not come back together. With a hint the wait
//! is the hint plus up to 10% of that same ceiling: the server said when, the small spread
//! keeps everyone it told the same time from arriving at once.

use std::{
    hash::{BuildHasher, Hasher},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Exponential back-off parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(500), cap: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The largest wait before retry `retry` (1 for the first retry): `base * 2^(retry-1)`,
    /// at most `cap`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// The wait before retry `retry`, given the server's hint.
    pub fn delay(&self, retry: u32, hint: Option<Duration>, rng: &mut Rng) -> Duration {
        let ceiling = self.ceiling(retry);
        match hint {
            Some(hint) => hint.saturating_add(ceiling.mul_f64(0.1 * rng.unit())),
            None => ceiling.mul_f64(rng.unit()),
        }
    }
}

/// A small, fast generator for jitter (SplitMix64); not for anything secret.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from std's per-process random hash keys, different for every call.
    pub fn new() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(
            SystemTime::now().duration_since(UNIX_EPOCH).map(|time| time.as_nanos() as u64).unwrap_or(0),
        );
        Rng(hasher.finish())
    }

    /// A fixed sequence, for tests.
    pub fn seeded(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// Whether an HTTP status is worth retrying: 429 (rate limited), 408 (the server timed out
/// waiting) and every 5xx. Other 4xx are the request's fault and would fail again.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || status == 408 || (500..=599).contains(&status)
}

/// Whether an error body is OpenAI's `insufficient_quota` (`error.code` or `error.type`), sent
/// with HTTP 429 when the account has no credit left: unlike a rate limit, waiting does not
/// help. A list of errors is judged by its first.
pub fn quota_exhausted(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
    let value = match &value {
        serde_json::Value::Array(list) => list.first().unwrap_or(&serde_json::Value::Null),
        other => other,
    };
    let error = value.get("error").unwrap_or(&serde_json::Value::Null);
    ["code", "type"]
        .iter()
        .any(|field| error.get(field).and_then(serde_json::Value::as_str) == Some("insufficient_quota"))
}

/// The server's hint from `retry-after-ms` (milliseconds, OpenAI and Azure) or `Retry-After`
/// (integer or fractional seconds, or an HTTP date), relative to `now`. A date in the past is
/// a zero wait; an unreadable value is no hint.
pub fn retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(millis) = retry_after_ms.and_then(seconds).map(|value| value / 1000.0) {
        return Some(Duration::from_secs_f64(millis));
    }
    let text = retry_after?.trim();
    if let Some(value) = seconds(text) {
        return Some(Duration::from_secs_f64(value));
    }
    let date = http_date(text)?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A non-negative finite number (at most a day: anything longer is not a real hint).
fn seconds(text: &str) -> Option<f64> {
    let value: f64 = text.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value.min(86_400.0))
}

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// An HTTP date in any of the three forms of RFC 9110: `Sun, 06 Nov 1994 08:49:37 GMT`
/// (IMF-fixdate), `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850) and `Sun Nov  6 08:49:37 1994`
/// (asctime).
pub fn http_date(text: &str) -> Option<SystemTime> {
    let cleaned = text.replace([',', '-'], " ");
    let mut month = None;
    let mut clock = None;
    let mut numbers = Vec::new();
    for token in cleaned.split_whitespace() {
        let lower = token.to_ascii_lowercase();
        if let Some(index) = MONTHS.iter().position(|name| *name == lower) {
            month = Some(index as u32 + 1);
        } else if token.contains(':') {
            let parts: Vec<u32> = token.split(':').map(str::parse).collect::<Result<_, _>>().ok()?;
            match parts[..] {
                [hour, minute, second] if hour < 24 && minute < 60 && second < 61 => {
                    clock = Some((hour, minute, second))
                }
                _ => return None,
            }
        } else if token.bytes().all(|byte| byte.is_ascii_digit()) {
            numbers.push((token.len(), token.parse::<i64>().ok()?));
        } else if !(matches!(lower.as_str(), "gmt" | "utc" | "ut" | "z")
            || lower.len() >= 3 && is_weekday(&lower))
        {
            return None;
        }
    }
    let (month, (hour, minute, second)) = (month?, clock?);
    let [(_, day), (year_digits, year)] = numbers[..] else { return None };
    let year = match year_digits {
        2 if year >= 70 => 1900 + year,
        2 => 2000 + year,
        4 => year,
        _ => return None,
    };
    if !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day as u32);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

fn is_weekday(lower: &str) -> bool {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().any(|day| lower.starts_with(day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
