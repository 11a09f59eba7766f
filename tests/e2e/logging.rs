use crate::harness::{fixture, karma, Workdir};

fn chatty_run(env: &[(&str, &str)], verbose: bool) -> crate::harness::Run {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("chatty")]);
    let mut args = vec!["--plugins-dir", plugins.to_str().unwrap()];
    if verbose {
        args.push("-v");
    }
    args.extend_from_slice(&["run", "--model", "fixture/chatty", "--input", "x"]);
    let owned: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
    karma(&refs, env)
}

#[test]
fn plugin_events_reach_the_host_with_target_and_plugin_name() {
    let run = chatty_run(&[("RUST_LOG", "chatty::run=debug,chatty::load=info")], false);
    run.assert_code(0);
    for level in ["ERROR", "WARN", "INFO", "DEBUG"] {
        let wanted = format!("{level} chatty::run: chatty {} event", level.to_lowercase());
        assert!(run.stderr.contains(&wanted), "missing {wanted:?} in:\n{}", run.stderr);
    }
    assert!(
        run.stderr.contains("INFO chatty::run: chatty info event batch=1 plugin=\"libfixture_chatty.so\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("INFO chatty::load: loading chatty weights=\"none\" plugin=\"libfixture_chatty.so\"")
            || run
                .stderr
                .contains("INFO chatty::load: loading chatty weights=none plugin=\"libfixture_chatty.so\""),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("chatty trace event"), "trace is filtered out:\n{}", run.stderr);
    // The disabled trace event's argument was never formatted inside the plugin.
    assert_eq!(run.json_lines()[0]["output"], "formatted=0 image_ptr=0x0");
}

#[test]
fn host_filter_applies_per_target_and_level() {
    let quiet = chatty_run(&[], false);
    quiet.assert_code(0);
    assert!(quiet.stderr.contains("ERROR chatty::run: chatty error event"), "{}", quiet.stderr);
    assert!(quiet.stderr.contains("WARN chatty::run: chatty warn event"), "{}", quiet.stderr);
    assert!(!quiet.stderr.contains("chatty info event"), "{}", quiet.stderr);

    let only_load = chatty_run(&[("RUST_LOG", "chatty::load=info")], false);
    assert!(only_load.stderr.contains("chatty::load: loading chatty"), "{}", only_load.stderr);
    assert!(!only_load.stderr.contains("chatty::run"), "{}", only_load.stderr);

    let traced = chatty_run(&[("RUST_LOG", "chatty=trace")], false);
    assert!(
        traced.stderr.contains("TRACE chatty::run: chatty trace event expensive value"),
        "{}",
        traced.stderr
    );
    assert_eq!(traced.json_lines()[0]["output"], "formatted=1 image_ptr=0x0");
}
