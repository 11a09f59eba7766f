//! End-to-end tests: real plugins built from this repository, loaded by the real loader, driven
//! through the real `karma-host` binary (or its library API where a test needs one process).

mod harness;

/// HTTP API models (openai-compat plugin) against a scripted loopback API.
mod api_models;

/// Plugin files that must be rejected, each with its exact diagnostic.
mod bad_files;
/// The candle LLM plugin on tiny generated checkpoints: eval, log-likelihood scoring, hub download.
mod candle_llm;
/// Generated datasets in the hub schemas.
mod datagen;
/// `karma-host eval` end to end.
mod eval;
/// The work dir `eval` tests share.
mod eval_env;
/// A scripted chat-completion API on loopback, for API models and judges.
mod fake_api;
/// Hub datasets through a fake hub on loopback.
mod fake_hub;
/// The plugin author guide, followed literally.
mod guide;
/// Bad input, signals, full disks and shared caches: no data lost, every failure named.
mod hardening;
/// The library API in one process: recovery after panics, extensions, zero-copy batches.
mod in_process;
/// `--isolation worker`: crashing, exiting, hanging and runaway plugins quarantined item by item.
mod isolation;
/// `list`, `info`, `--version` and the plugin search path.
mod listing;
/// Plugin logs reaching the host's subscriber.
mod logging;
/// Images and recordings from rows to the plugin; VQA and ASR datasets; the modality check.
mod media;
/// Real PNG, WAV, JPEG and FLAC bytes, and parquet files with media structs.
mod media_gen;
/// Fixture plugins that panic or break the output contract.
mod misbehaving;
/// Text processors before the metrics, in eval and score.
mod processors;
/// Registered datasets of every family on generated rows in their hub schemas.
mod registry_datasets;
/// Judge-graded rubric datasets (HealthBench's schema) with baseline candidate and judge.
mod rubric_grading;
/// `run`: one batch through the baseline models.
mod run_batch;
/// Safety, harm, bias (AMQA) and calculator datasets.
mod safety_bias;
/// Scanning plugins in child processes, and the scan cache.
mod scanning;
/// Open QA and translation files, `--task`, `--metrics`, and `score`.
mod tasks;
/// The candle Whisper plugin: tiny generated checkpoints and the real tiny.en on ASR files.
mod whisper;
