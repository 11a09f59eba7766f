use crate::harness::{baseline_plugin, host_binary, karma, karma_in, Workdir};

const BASELINE_MODELS: [&str; 5] =
    ["karma/constant", "karma/echo", "karma/first-option", "karma/random-option", "karma/describe-input"];

#[test]
fn list_models_json_from_a_plugin_copied_alone_into_an_empty_folder() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let run = karma_in(&plugins, &["list", "models", "--format", "json"]);
    run.assert_code(0);
    let json = run.json();
    let models = json["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|model| model["name"].as_str().unwrap()).collect();
    assert_eq!(names, BASELINE_MODELS);
    for model in models {
        if model["name"] == "karma/describe-input" {
            assert_eq!(model["model_type"], "multimodal");
            assert_eq!(model["modalities"], serde_json::json!(["text", "image", "audio", "video"]));
        } else {
            assert_eq!(model["model_type"], "text_generation");
            assert_eq!(model["modalities"], serde_json::json!(["text"]));
        }
        assert_eq!(model["plugin"], plugins.join("libkarma_plugin_baseline.so").to_str().unwrap());
        assert_eq!(model["duplicate"], false);
    }
}

#[test]
fn list_models_table_and_csv() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let table = karma_in(&plugins, &["list", "models"]);
    table.assert_code(0);
    let mut lines = table.stdout.lines();
    assert!(lines.next().unwrap().starts_with("NAME"));
    let first: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(first[..3], ["karma/constant", "text_generation", "text"]);
    assert!(table.stdout.contains("karma/describe-input"), "{}", table.stdout);

    let csv = karma_in(&plugins, &["list", "models", "--format", "csv"]);
    csv.assert_code(0);
    let plugin = plugins.join("libkarma_plugin_baseline.so");
    assert!(csv.stdout.starts_with("name,model_type,modalities,plugin\r\n"));
    assert!(csv.stdout.contains(&format!("karma/echo,text_generation,text,{}\r\n", plugin.display())));
}

#[test]
fn list_plugins_json_reports_versions() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let run = karma_in(&plugins, &["list", "plugins", "--format", "json"]);
    run.assert_code(0);
    let json = run.json();
    let entry = &json["plugins"][0];
    assert_eq!(entry["status"], "loaded");
    assert_eq!(entry["reason"], serde_json::Value::Null);
    assert_eq!(entry["plugin_api_version"], karma_plugin_api::abi::PLUGIN_API_VERSION);
    assert_eq!(entry["abi_version"], "1.0");
    assert!(entry["rustc_version"].as_str().unwrap().starts_with("rustc "));
    assert_eq!(entry["models"].as_array().unwrap().len(), 5);
}

#[test]
fn version_names_host_and_abi() {
    let run = karma(&["--version"], &[]);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "karma-host 0.1.0 (plugin ABI 1.0)");
}

#[test]
fn default_search_path_is_beside_the_executable() {
    // target/<profile>/karma-host finds target/<profile>/libkarma_plugin_baseline.so unaided.
    let _ = host_binary();
    let run = karma(&["list", "models", "--format", "json"], &[]);
    run.assert_code(0);
    let json = run.json();
    let plugin = baseline_plugin().canonicalize().unwrap();
    assert!(
        json["models"].as_array().unwrap().iter().any(|model| model["name"] == "karma/echo"
            && std::path::Path::new(model["plugin"].as_str().unwrap()).canonicalize().unwrap() == plugin),
        "{}",
        run.stdout
    );
}

#[test]
fn env_var_lists_colon_separated_directories() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let empty = work.plugins_dir("empty", &[]);
    let value = format!("{}:{}", empty.display(), plugins.display());
    let run = karma(&["list", "models", "--format", "json"], &[("KARMA_PLUGINS_DIR", &value)]);
    run.assert_code(0);
    assert_eq!(run.json()["models"].as_array().unwrap().len(), 5);
}

#[test]
fn missing_explicit_plugin_dir_is_an_error() {
    let work = Workdir::new();
    let run = karma_in(&work.path().join("nope"), &["list", "models"]);
    run.assert_code(2);
    assert!(run.stderr.contains("error: cannot read plugin directory"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: check the `--plugins-dir`"), "{}", run.stderr);
}

#[test]
fn info_model_shows_all_metadata_and_the_plugin() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let run = karma_in(&plugins, &["info", "model", "karma/random-option", "--format", "json"]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["name"], "karma/random-option");
    assert_eq!(json["loader_kwargs"], serde_json::json!({"seed": 0}));
    assert_eq!(json["n_parameters"], 0);
    assert_eq!(json["languages"], serde_json::json!(["mul"]));
    assert_eq!(json["plugin"], plugins.join("libkarma_plugin_baseline.so").to_str().unwrap());

    let table = karma_in(&plugins, &["info", "model", "karma/constant"]);
    table.assert_code(0);
    assert!(table.stdout.contains("loader_kwargs          {\"value\":\"A\"}"), "{}", table.stdout);
}

#[test]
fn unknown_model_suggests_close_names_and_exits_2() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let run = karma_in(&plugins, &["info", "model", "karma/random"]);
    run.assert_code(2);
    assert!(run.stderr.contains("error: unknown model `karma/random`"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: did you mean: karma/random-option"), "{}", run.stderr);
}

#[test]
fn duplicate_model_names_are_reported_and_neither_wins() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    std::fs::copy(baseline_plugin(), plugins.join("copy_of_baseline.so")).unwrap();
    let run = karma_in(&plugins, &["list", "models", "--format", "json"]);
    run.assert_code(0);
    let models = run.json()["models"].as_array().unwrap().clone();
    assert_eq!(models.len(), 10);
    assert!(models.iter().all(|model| model["duplicate"] == true));
    assert!(run.stderr.contains("model `karma/echo` is provided by several plugins"), "{}", run.stderr);

    let use_it = karma_in(&plugins, &["run", "--model", "karma/echo", "--input", "x"]);
    use_it.assert_code(2);
    assert!(
        use_it.stderr.contains("error: model `karma/echo` is provided by 2 plugins"),
        "{}",
        use_it.stderr
    );
    assert!(use_it.stderr.contains("copy_of_baseline.so"), "{}", use_it.stderr);
}
