use crate::harness::{fixture, karma_in, Workdir};

#[test]
fn panic_in_create_is_a_panicked_error_not_a_crash() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("panic-create")]);
    let run = karma_in(&plugins, &["run", "--model", "fixture/panic-in-create", "--input", "x"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("failed in `create`: panicked in `create`: fixture panic in create of fixture/panic-in-create (at panic-create/src/lib.rs:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("(panicked)"), "{}", run.stderr);
    // The panic message is also in the host log, tagged with the plugin.
    assert!(run.stderr.contains("plugin panicked: fixture panic in create"), "{}", run.stderr);
    assert!(run.stderr.contains("plugin=\"libfixture_panic_create.so\""), "{}", run.stderr);
}

#[test]
fn panic_in_run_is_a_panicked_error_not_a_crash() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("panic-run")]);
    let run = karma_in(&plugins, &["run", "--model", "fixture/panic-in-run", "--input", "x"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains(
            "failed in `run`: panicked in `run`: index out of bounds: the len is 0 but the index is 1"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn wrong_outputs_are_named_id_by_id() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("wrong-outputs")]);
    let run = karma_in(
        &plugins,
        &["run", "--model", "fixture/wrong-outputs", "--input", "a", "--input", "b", "--input", "c"],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains(&format!(
            "broke the output contract: 4 outputs for 3 items, missing ids [2], duplicate ids [0], unknown ids [{}]",
            u64::MAX - 7
        )),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing is reported as an answer: {}", run.stdout);
}
