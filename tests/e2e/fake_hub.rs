//! Datasets from the hub: a fake Hugging Face hub on loopback serves a pinned revision; the
//! host downloads it into the HF cache layout, then finds it offline. A hub that never answers
//! times out instead of hanging.

use std::{
    io::{Read, Write},
    net::TcpListener,
    time::{Duration, Instant},
};

use crate::{
    datagen,
    harness::{baseline_plugin, karma_command, Workdir},
};

const COMMIT: &str = "153e61cd0123456789abcdef0123456789abcdef";

/// Serves `routes` (path → body) to at most `max_connections` clients, for at most 60 s.
pub(crate) fn serve(
    routes: Vec<(String, Vec<u8>)>,
    max_connections: usize,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut requested = Vec::new();
        while requested.len() < max_connections && Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => request.extend_from_slice(&buffer[..read]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or_default().to_owned();
            requested.push(path.clone());
            let (status, body) = match routes.iter().find(|(route, _)| *route == path) {
                Some((_, body)) => ("200 OK", body.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let header =
                format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
        requested
    });
    (address, handle)
}

#[test]
fn a_pinned_hub_dataset_is_downloaded_into_the_hf_cache_then_used_offline() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let questions = datagen::questions(30, 21);
    let parquet_path = work.path().join("upload.parquet");
    datagen::write_openlifescience_parquet(&parquet_path, &questions);
    let listing = serde_json::json!({
        "sha": COMMIT,
        "siblings": [{"rfilename": "README.md"}, {"rfilename": "data/train-00000-of-00001.parquet"}, {"rfilename": "data/test-00000-of-00001.parquet"}],
    });
    let routes = vec![
        (
            "/api/datasets/openlifescienceai/medqa/revision/153e61cd".to_owned(),
            listing.to_string().into_bytes(),
        ),
        (
            format!("/datasets/openlifescienceai/medqa/resolve/{COMMIT}/data/test-00000-of-00001.parquet"),
            std::fs::read(&parquet_path).unwrap(),
        ),
    ];
    let (endpoint, server) = serve(routes, 2);
    let hf_home = work.path().join("hf");
    let cache = work.path().join("cache.sqlite");
    let args = [
        "--plugins-dir",
        plugins.to_str().unwrap(),
        "eval",
        "--model",
        "karma/first-option",
        "--datasets",
        "medqa",
        "--no-progress",
        "--cache-path",
        cache.to_str().unwrap(),
    ];
    let run = karma_command(
        &args,
        &[("HF_HOME", hf_home.to_str().unwrap()), ("HF_ENDPOINT", &endpoint)],
        Some(work.path()),
    );
    run.assert_code(0);
    assert_eq!(
        server.join().unwrap(),
        [
            "/api/datasets/openlifescienceai/medqa/revision/153e61cd",
            &format!("/datasets/openlifescienceai/medqa/resolve/{COMMIT}/data/test-00000-of-00001.parquet")
        ]
    );
    let snapshot = hf_home.join(format!(
        "hub/datasets--openlifescienceai--medqa/snapshots/{COMMIT}/data/test-00000-of-00001.parquet"
    ));
    assert!(snapshot.is_file(), "downloaded into the hub snapshot layout");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("results.json")).unwrap()).unwrap();
    let entry = &results["datasets"]["openlifescienceai/medqa"];
    assert_eq!(entry["revision"], COMMIT);
    let expected = questions.iter().filter(|q| q.answer == "A").count() as f64 / 30.0;
    assert!((entry["metrics"]["exact_match"]["score"].as_f64().unwrap() - expected).abs() < 1e-12);

    // Offline (the server is gone): the cache is enough, found through HF_HUB_CACHE too.
    let mut offline_args = args.to_vec();
    offline_args.push("--offline");
    let hub_cache = hf_home.join("hub");
    let offline = karma_command(
        &offline_args,
        &[("HF_HUB_CACHE", hub_cache.to_str().unwrap()), ("HF_ENDPOINT", "http://127.0.0.1:9")],
        Some(work.path()),
    );
    offline.assert_code(0);

    // Offline and not cached: a clear error, nothing evaluated.
    let missing = karma_command(
        &[
            "--plugins-dir",
            plugins.to_str().unwrap(),
            "eval",
            "--model",
            "karma/first-option",
            "--datasets",
            "pubmedqa",
            "--no-progress",
            "--cache-path",
            cache.to_str().unwrap(),
        ],
        &[("HF_HOME", hf_home.to_str().unwrap()), ("HF_HUB_OFFLINE", "1")],
        Some(work.path()),
    );
    missing.assert_code(2);
    assert!(
        missing.stderr.contains(
            "dataset `openlifescienceai/pubmedqa` (revision 50fc41dc) is not in the local Hugging Face cache"
        ),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_hub_that_never_answers_times_out() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    // Accept (the kernel does, through the backlog) but never answer.
    let started = Instant::now();
    let run = karma_command(
        &[
            "--plugins-dir",
            plugins.to_str().unwrap(),
            "eval",
            "--model",
            "karma/constant",
            "--datasets",
            "medqa",
            "--no-progress",
            "--cache-path",
            work.path().join("c.sqlite").to_str().unwrap(),
        ],
        &[
            ("HF_HOME", work.path().join("hf").to_str().unwrap()),
            ("HF_ENDPOINT", &endpoint),
            ("KARMA_HUB_TIMEOUT_SECS", "1"),
        ],
        Some(work.path()),
    );
    drop(listener);
    run.assert_code(2);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(run.stderr.contains("cannot reach the hub at"), "{}", run.stderr);
}
