//! Datasets from the hub: a fake Hugging Face hub on loopback serves a pinned revision; the
//! host downloads it into the HF cache layout, then finds it offline. A hub that never answers
//! times out instead of hanging; a gated repository needs a token; a Xet-backed file arrives
//! through the bridge redirect the real hub sends.
//!
//! The fake answers the way huggingface.co does, so any client that works against it (ours, or
//! hf-hub in the `bench/hf_hub_trial.sh` comparison) sees the real protocol: `HEAD` and `GET` on
//! `resolve/` carry `ETag` and `X-Repo-Commit`; a Xet-backed file answers `302` to a bridge URL
//! with `X-Xet-Hash`, `X-Linked-Size` and `X-Linked-Etag`; a gated repository answers `401` with
//! `X-Error-Code: GatedRepo` until the request carries its token.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use crate::{
    datagen,
    harness::{baseline_plugin, karma_command, Workdir},
};

const COMMIT: &str = "153e61cd0123456789abcdef0123456789abcdef";
const MEDQA_INFO: &str = "/api/datasets/openlifescienceai/medqa/revision/153e61cd";
const MEDQA_TEST_FILE: &str = "data/test-00000-of-00001.parquet";

/// How the fake hub answers one path.
pub(crate) struct Route {
    path: String,
    body: Vec<u8>,
    /// A gated repository's token: requests without `Authorization: Bearer <token>` get 401.
    token: Option<&'static str>,
    /// Stored in Xet: `resolve/` answers 302 to a bridge URL on the same server, as the real hub
    /// redirects to its CAS bridge.
    xet: bool,
    /// Accepts the request and never answers.
    stall: bool,
}

impl Route {
    pub(crate) fn new(path: impl Into<String>, body: Vec<u8>) -> Route {
        Route { path: path.into(), body, token: None, xet: false, stall: false }
    }

    fn gated(self, token: &'static str) -> Route {
        Route { token: Some(token), ..self }
    }

    fn xet(self) -> Route {
        Route { xet: true, ..self }
    }

    fn stall(self) -> Route {
        Route { stall: true, ..self }
    }

    fn etag(&self) -> String {
        format!("{:x}", Sha256::digest(&self.body))
    }
}

/// A running fake hub; [`FakeHub::finish`] stops it and returns what was requested.
pub(crate) struct FakeHub {
    pub(crate) endpoint: String,
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<String>>,
}

impl FakeHub {
    /// Serves `routes` (and 404 for anything else) until finished. The 10-minute limit only
    /// bounds a test that fails before finishing: the first run may spend minutes building plugins.
    pub(crate) fn start(routes: Vec<Route>) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let address = endpoint.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            let (mut requested, mut stalled) = (Vec::new(), Vec::new());
            while !stopping.load(Ordering::SeqCst) && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if let Some(held) = answer(stream, &address, &routes, &mut requested) {
                    stalled.push(held);
                }
            }
            requested
        });
        FakeHub { endpoint, stop, handle }
    }

    /// Stops the server; every request as `METHOD /path`, in order.
    pub(crate) fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }

    /// The `GET` requests only (a client may or may not send `HEAD` first).
    pub(crate) fn finish_gets(self) -> Vec<String> {
        self.finish().into_iter().filter_map(|line| line.strip_prefix("GET ").map(str::to_owned)).collect()
    }
}

/// Answers one connection (`Connection: close`); returns the stream when the route stalls.
fn answer(
    mut stream: TcpStream,
    endpoint: &str,
    routes: &[Route],
    requested: &mut Vec<String>,
) -> Option<TcpStream> {
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
    let text = String::from_utf8_lossy(&request).into_owned();
    let mut words = text.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let authorization = text
        .lines()
        .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("authorization")))
        .map(|(_, value)| value.trim().to_owned());
    requested.push(format!("{method} {path}"));
    let bridge = routes.iter().find(|route| route.xet && path == format!("/xet-bridge/{}", route.etag()));
    let route = routes.iter().find(|route| route.path == path);
    let mut headers = vec![("Connection".to_owned(), "close".to_owned())];
    let (status, body) = match (bridge, route) {
        (Some(bridge), _) => ("200 OK", bridge.body.clone()),
        (None, Some(route)) if route.stall => return Some(stream),
        (None, Some(route))
            if route.token.is_some_and(|token| authorization != Some(format!("Bearer {token}"))) =>
        {
            headers.push(("X-Error-Code".to_owned(), "GatedRepo".to_owned()));
            ("401 Unauthorized", br#"{"error":"Access to this repository is restricted."}"#.to_vec())
        }
        (None, Some(route)) => {
            if let Some(commit) = resolve_commit(&path) {
                let etag = route.etag();
                headers.push(("X-Repo-Commit".to_owned(), commit.to_owned()));
                headers.push(("ETag".to_owned(), format!("\"{etag}\"")));
                if route.xet {
                    headers.push(("X-Xet-Hash".to_owned(), etag.clone()));
                    headers.push(("X-Linked-Size".to_owned(), route.body.len().to_string()));
                    headers.push(("X-Linked-Etag".to_owned(), format!("\"{etag}\"")));
                    // Absolute, as the real bridge lives on another host (cas-bridge.xethub.hf.co).
                    headers.push(("Location".to_owned(), format!("{endpoint}/xet-bridge/{etag}")));
                }
            }
            if route.xet && resolve_commit(&path).is_some() {
                ("302 Found", Vec::new())
            } else {
                ("200 OK", route.body.clone())
            }
        }
        (None, None) => {
            headers.push(("X-Error-Code".to_owned(), "EntryNotFound".to_owned()));
            ("404 Not Found", b"not found".to_vec())
        }
    };
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&body);
    }
    None
}

/// The commit in a `…/resolve/<commit>/<file>` path.
fn resolve_commit(path: &str) -> Option<&str> {
    let (_, rest) = path.split_once("/resolve/")?;
    rest.split('/').next()
}

/// The medqa listing at [`COMMIT`] and the test split served as `route` turns it.
fn medqa_routes(parquet: Vec<u8>, route: impl Fn(Route) -> Route) -> Vec<Route> {
    // The fields huggingface.co always sends with a revision's listing (clients such as hf-hub
    // require `id`).
    let listing = serde_json::json!({
        "_id": "6450d0a7c6e8b1d0c2a1f3e4",
        "id": "openlifescienceai/medqa",
        "private": false,
        "gated": false,
        "sha": COMMIT,
        "siblings": [{"rfilename": "README.md"}, {"rfilename": "data/train-00000-of-00001.parquet"}, {"rfilename": MEDQA_TEST_FILE}],
    });
    vec![
        route(Route::new(MEDQA_INFO, listing.to_string().into_bytes())),
        route(Route::new(medqa_file_path(), parquet)),
    ]
}

fn medqa_file_path() -> String {
    format!("/datasets/openlifescienceai/medqa/resolve/{COMMIT}/{MEDQA_TEST_FILE}")
}

/// `eval --model karma/first-option --datasets medqa` with the baseline plugin.
fn eval_medqa(work: &Workdir, env: &[(&str, &str)]) -> crate::harness::Run {
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let cache = work.path().join("cache.sqlite");
    karma_command(
        &[
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
        ],
        env,
        Some(work.path()),
    )
}

fn medqa_parquet(work: &Workdir, questions: usize) -> Vec<u8> {
    let path = work.path().join("upload.parquet");
    datagen::write_openlifescience_parquet(&path, &datagen::questions(questions, 21));
    std::fs::read(path).unwrap()
}

#[test]
fn a_pinned_hub_dataset_is_downloaded_into_the_hf_cache_then_used_offline() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let questions = datagen::questions(30, 21);
    let parquet_path = work.path().join("upload.parquet");
    datagen::write_openlifescience_parquet(&parquet_path, &questions);
    let hub = FakeHub::start(medqa_routes(std::fs::read(&parquet_path).unwrap(), |route| route));
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
        &[("HF_HOME", hf_home.to_str().unwrap()), ("HF_ENDPOINT", &hub.endpoint)],
        Some(work.path()),
    );
    run.assert_code(0);
    assert_eq!(hub.finish_gets(), [MEDQA_INFO.to_owned(), medqa_file_path()]);
    let snapshot =
        hf_home.join(format!("hub/datasets--openlifescienceai--medqa/snapshots/{COMMIT}/{MEDQA_TEST_FILE}"));
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

/// A public gated repository: its listing is open, its files need the token.
fn gated(token: &'static str) -> impl Fn(Route) -> Route {
    move |route| if route.path.contains("/resolve/") { route.gated(token) } else { route }
}

#[test]
fn a_gated_hub_repo_needs_a_token_from_hf_token_or_the_token_file() {
    let work = Workdir::new();
    let token = "hf_fake_gated_token_0123";
    let hub = FakeHub::start(medqa_routes(medqa_parquet(&work, 12), gated(token)));
    let hf_home = work.path().join("hf");
    let home = hf_home.to_str().unwrap();

    // No token: the hub's 401 becomes an error saying what to set.
    let denied = eval_medqa(&work, &[("HF_HOME", home), ("HF_ENDPOINT", &hub.endpoint)]);
    denied.assert_code(2);
    assert!(denied.stderr.contains("401") && denied.stderr.contains("set HF_TOKEN"), "{}", denied.stderr);

    // The token in HF_TOKEN opens it; the token never reaches the output.
    let granted =
        eval_medqa(&work, &[("HF_HOME", home), ("HF_ENDPOINT", &hub.endpoint), ("HF_TOKEN", token)]);
    granted.assert_code(0);
    assert!(!granted.stderr.contains(token) && !granted.stdout.contains(token));
    assert!(hf_home
        .join(format!("hub/datasets--openlifescienceai--medqa/snapshots/{COMMIT}/{MEDQA_TEST_FILE}"))
        .is_file());
    hub.finish();

    // `huggingface-cli login` stores the token in $HF_HOME/token: that works too.
    let work = Workdir::new();
    let hub = FakeHub::start(medqa_routes(medqa_parquet(&work, 12), gated(token)));
    let hf_home = work.path().join("hf");
    std::fs::create_dir_all(&hf_home).unwrap();
    std::fs::write(hf_home.join("token"), format!("{token}\n")).unwrap();
    let from_file =
        eval_medqa(&work, &[("HF_HOME", hf_home.to_str().unwrap()), ("HF_ENDPOINT", &hub.endpoint)]);
    from_file.assert_code(0);
    assert_eq!(hub.finish_gets().len(), 2);
}

#[test]
fn a_xet_backed_file_is_downloaded_through_the_bridge_redirect() {
    let work = Workdir::new();
    // Larger than one read buffer, so the redirected body streams in several reads.
    let parquet = medqa_parquet(&work, 400);
    let hub = FakeHub::start(medqa_routes(parquet.clone(), |route| {
        if route.path.contains("/resolve/") {
            route.xet()
        } else {
            route
        }
    }));
    let hf_home = work.path().join("hf");
    let run = eval_medqa(&work, &[("HF_HOME", hf_home.to_str().unwrap()), ("HF_ENDPOINT", &hub.endpoint)]);
    run.assert_code(0);
    let gets = hub.finish_gets();
    assert_eq!(gets[..2], [MEDQA_INFO.to_owned(), medqa_file_path()], "{gets:?}");
    assert!(gets[2].starts_with("/xet-bridge/"), "followed the redirect: {gets:?}");
    let downloaded = std::fs::read(
        hf_home.join(format!("hub/datasets--openlifescienceai--medqa/snapshots/{COMMIT}/{MEDQA_TEST_FILE}")),
    )
    .unwrap();
    assert!(downloaded == parquet, "the bytes behind the redirect, intact");
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

#[test]
fn a_hub_that_lists_the_repo_then_stalls_on_its_file_times_out() {
    let work = Workdir::new();
    let hub = FakeHub::start(medqa_routes(medqa_parquet(&work, 12), |route| {
        if route.path.contains("/resolve/") {
            route.stall()
        } else {
            route
        }
    }));
    let hf_home = work.path().join("hf");
    let started = Instant::now();
    let run = eval_medqa(
        &work,
        &[
            ("HF_HOME", hf_home.to_str().unwrap()),
            ("HF_ENDPOINT", &hub.endpoint),
            ("KARMA_HUB_TIMEOUT_SECS", "1"),
        ],
    );
    let took = started.elapsed();
    hub.finish();
    run.assert_code(2);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(run.stderr.contains("cannot reach the hub at"), "{}", run.stderr);
    let snapshot = hf_home.join(format!("hub/datasets--openlifescienceai--medqa/snapshots/{COMMIT}"));
    assert!(!snapshot.join(MEDQA_TEST_FILE).exists(), "no truncated file left to trust");
}
