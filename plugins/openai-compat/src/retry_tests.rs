use super::*;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[test]
fn retry_after_seconds_fractions_and_milliseconds() {
    let now = at(1_000);
    assert_eq!(retry_after(None, Some("3"), now), Some(Duration::from_secs(3)));
    assert_eq!(retry_after(None, Some(" 0.25 "), now), Some(Duration::from_millis(250)));
    assert_eq!(retry_after(Some("1500"), Some("9"), now), Some(Duration::from_millis(1500)), "ms wins");
    assert_eq!(retry_after(Some("20.5"), None, now), Some(Duration::from_micros(20_500)));
    assert_eq!(retry_after(Some("soon"), Some("2"), now), Some(Duration::from_secs(2)), "bad ms ignored");
    assert_eq!(retry_after(None, Some("-1"), now), None);
    assert_eq!(retry_after(None, Some("later"), now), None);
    assert_eq!(retry_after(None, None, now), None);
}

#[test]
fn retry_after_http_dates_in_all_three_forms() {
    // 1994-11-06T08:49:37Z
    let date = at(784_111_777);
    assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(date));
    assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(date));
    assert_eq!(http_date("Sun Nov  6 08:49:37 1994"), Some(date));
    assert_eq!(http_date("Sat, 29 Feb 2020 00:00:00 GMT"), Some(at(1_582_934_400)));
    for bad in [
        "",
        "Sun, 06 Nov 1994",
        "06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 PST",
    ] {
        assert_eq!(http_date(bad), None, "{bad}");
    }
    let now = at(784_111_770);
    assert_eq!(retry_after(None, Some("Sun, 06 Nov 1994 08:49:37 GMT"), now), Some(Duration::from_secs(7)));
    let later = at(784_111_800);
    assert_eq!(retry_after(None, Some("Sun, 06 Nov 1994 08:49:37 GMT"), later), Some(Duration::ZERO));
}

#[test]
fn backoff_doubles_to_its_cap_and_full_jitter_stays_below_the_ceiling() {
    let backoff = Backoff::default();
    assert_eq!(backoff.ceiling(1), Duration::from_millis(500));
    assert_eq!(backoff.ceiling(2), Duration::from_secs(1));
    assert_eq!(backoff.ceiling(4), Duration::from_secs(4));
    assert_eq!(backoff.ceiling(7), Duration::from_secs(30));
    assert_eq!(backoff.ceiling(1000), Duration::from_secs(30));
    let mut rng = Rng::seeded(7);
    let mut sum = Duration::ZERO;
    for retry in 1..=10 {
        for _ in 0..200 {
            let delay = backoff.delay(retry, None, &mut rng);
            assert!(delay < backoff.ceiling(retry), "{delay:?} at retry {retry}");
            if retry == 1 {
                sum += delay;
            }
        }
    }
    // Uniform over [0, 500 ms): a mean near 250 ms, not a constant.
    let mean = sum / 200;
    assert!(mean > Duration::from_millis(200) && mean < Duration::from_millis(300), "{mean:?}");
}

#[test]
fn a_hint_is_honoured_with_a_small_spread() {
    let backoff = Backoff::default();
    let mut rng = Rng::seeded(1);
    let hint = Duration::from_secs(2);
    let delays: Vec<Duration> = (0..100).map(|_| backoff.delay(1, Some(hint), &mut rng)).collect();
    assert!(delays.iter().all(|delay| *delay >= hint && *delay < hint + Duration::from_millis(50)));
    assert!(delays.iter().any(|delay| *delay != delays[0]), "spread");
    let long = Duration::from_secs(90);
    assert!(backoff.delay(1, Some(long), &mut rng) >= long, "a hint above the cap is still honoured");
}

#[test]
fn which_statuses_are_retried() {
    for status in [429, 408, 500, 502, 503, 504, 529] {
        assert!(retryable_status(status), "{status}");
    }
    for status in [400, 401, 403, 404, 409, 413, 422] {
        assert!(!retryable_status(status), "{status}");
    }
}

#[test]
fn rng_is_uniform_enough() {
    let mut rng = Rng::seeded(42);
    let values: Vec<f64> = (0..10_000).map(|_| rng.unit()).collect();
    assert!(values.iter().all(|value| (0.0..1.0).contains(value)));
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!((mean - 0.5).abs() < 0.02, "{mean}");
    assert_ne!(Rng::new().next_u64(), Rng::new().next_u64());
}

#[test]
fn insufficient_quota_is_recognised_by_code_or_type() {
    let quota = br#"{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}"#;
    assert!(quota_exhausted(quota));
    assert!(quota_exhausted(br#"{"error": {"message": "m", "type": "x", "code": "insufficient_quota"}}"#));
    assert!(quota_exhausted(br#"{"error": {"message": "m", "type": "insufficient_quota", "code": null}}"#));
    assert!(quota_exhausted(br#"[{"error": {"code": "insufficient_quota"}}]"#));
    for other in [
        &br#"{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}"#[..],
        br#"{"error": "insufficient_quota"}"#,
        br#"{"type": "insufficient_quota"}"#,
        b"insufficient_quota",
        b"",
    ] {
        assert!(!quota_exhausted(other), "{}", String::from_utf8_lossy(other));
    }
}
