use fixture_extension_api::{AnswerTable, WrongAnswerTable, ANSWER_EXTENSION};
use karma_host::{
    datasets::item::{MediaBlob, OwnedItem},
    plugins::{scan, with_batch_view, CallError, ModelInstance, PluginDir, Registry},
};
use karma_plugin_api::abi::ErrorCode;

use crate::harness::{baseline_plugin, fixture, Workdir};

fn registry(work: &Workdir, plugins: &[std::path::PathBuf]) -> Registry {
    let directory = work.plugins_dir("plugins", plugins);
    scan(&[PluginDir { path: directory, explicit: true }])
}

fn text_items(texts: &[&str]) -> Vec<OwnedItem> {
    texts
        .iter()
        .zip(1u64..)
        .map(|(text, id)| OwnedItem { id, input: Some((*text).to_owned()), ..OwnedItem::default() })
        .collect()
}

#[test]
fn after_a_panic_the_instance_and_other_plugins_keep_working() {
    let work = Workdir::new();
    let registry = registry(&work, &[fixture("panic-run"), fixture("panic-create"), baseline_plugin()]);
    let items = text_items(&["a", "b"]);

    let creation = ModelInstance::create(registry.model("fixture/panic-in-create").unwrap(), "{}");
    let Err(CallError::Plugin { entry_point: "create", error, .. }) = creation else {
        panic!("create must fail")
    };
    assert_eq!(error.code, ErrorCode::PANICKED);

    let mut panicky = ModelInstance::create(registry.model("fixture/panic-in-run").unwrap(), "{}").unwrap();
    panicky.load().unwrap();
    match with_batch_view(&items, false, |batch| panicky.run(batch)) {
        Err(CallError::Plugin { entry_point: "run", error, .. }) => {
            assert_eq!(error.code, ErrorCode::PANICKED)
        }
        other => panic!("expected a PANICKED error, got {:?}", other.map(|outputs| outputs.len())),
    }
    let second = with_batch_view(&items, false, |batch| panicky.run(batch)).unwrap();
    assert_eq!(second[0].result.as_ref().unwrap().as_str(), "call 2");

    let mut echo = ModelInstance::create(registry.model("karma/echo").unwrap(), "{}").unwrap();
    echo.load().unwrap();
    let outputs = with_batch_view(&items, false, |batch| echo.run(batch)).unwrap();
    let texts: Vec<&str> = outputs.iter().map(|output| output.result.as_ref().unwrap().as_str()).collect();
    assert_eq!(texts, ["a", "b"]);
}

#[test]
fn run_before_load_is_refused() {
    let work = Workdir::new();
    let registry = registry(&work, &[baseline_plugin()]);
    let mut echo = ModelInstance::create(registry.model("karma/echo").unwrap(), "{}").unwrap();
    let result = with_batch_view(&text_items(&["x"]), false, |batch| echo.run(batch));
    let Err(CallError::Plugin { error, .. }) = result else { panic!("run before load must fail") };
    assert_eq!(error.code, ErrorCode::NOT_LOADED);
}

#[test]
fn a_large_image_reaches_the_plugin_without_a_copy() {
    let work = Workdir::new();
    let registry = registry(&work, &[fixture("chatty")]);
    let mut chatty = ModelInstance::create(registry.model("fixture/chatty").unwrap(), "{}").unwrap();
    chatty.load().unwrap();
    let item = OwnedItem {
        id: 1,
        input: Some("describe".into()),
        images: vec![MediaBlob { data: vec![0x5a; 50 << 20], format: "png".into() }],
        ..OwnedItem::default()
    };
    let address = item.images[0].data.as_ptr() as usize;
    let outputs = with_batch_view(std::slice::from_ref(&item), false, |batch| chatty.run(batch)).unwrap();
    let text = outputs[0].result.as_ref().unwrap().as_str().to_owned();
    assert!(text.ends_with(&format!("image_ptr={address:#x}")), "{text} vs {address:#x}");
}

#[test]
fn extensions_are_found_by_id_and_layout_checked() {
    let work = Workdir::new();
    let registry = registry(&work, &[fixture("chatty"), baseline_plugin()]);
    let chatty = ModelInstance::create(registry.model("fixture/chatty").unwrap(), "{}").unwrap();
    let table = chatty.extension::<AnswerTable>(ANSWER_EXTENSION).unwrap().expect("offered");
    assert_eq!((table.answer)(), 42);
    assert!(chatty.extension::<AnswerTable>("karma.test.unknown/1").unwrap().is_none());
    let wrong = chatty.extension::<WrongAnswerTable>(ANSWER_EXTENSION);
    assert!(matches!(wrong, Err(CallError::BadExtension { .. })), "a mismatched layout must be refused");

    let echo = ModelInstance::create(registry.model("karma/echo").unwrap(), "{}").unwrap();
    assert!(echo.extension::<AnswerTable>(ANSWER_EXTENSION).unwrap().is_none());
}

#[test]
fn an_image_read_from_a_parquet_row_reaches_the_plugin_without_a_copy() {
    use karma_host::{
        datasets::catalog,
        engine::{DatasetPlan, DatasetSource, ItemReader, Read, Scoring},
    };

    let work = Workdir::new();
    let image = crate::media_gen::png(300, 200, 7);
    let path = work.path().join("vqa.parquet");
    crate::media_gen::write_media_parquet(
        &path,
        &[
            crate::media_gen::Column::Media("image", vec![(image.clone(), Some("scan.png".to_owned()))]),
            crate::media_gen::Column::Text("question", vec!["Is there an effusion?".to_owned()]),
            crate::media_gen::Column::Text("answer", vec!["no".to_owned()]),
        ],
    );
    let plan = DatasetPlan {
        name: "vqa-rad".to_owned(),
        definition: catalog::find("vqa-rad").unwrap(),
        args: Default::default(),
        source: DatasetSource::Local { files: vec![path.clone()] },
        metrics: Vec::new(),
        processors: Vec::new(),
    };
    let mut reader = ItemReader::new(&plan, Scoring::Generate, vec![path], 10, true);
    let mut items = Vec::new();
    assert!(matches!(reader.next(&mut items), Ok(Some(Read::Item))));
    let item = &items[0].item;
    assert_eq!(item.images[0].data, image, "the row's bytes, whole");
    let address = item.images[0].data.as_ptr() as usize;

    let registry = registry(&work, &[fixture("chatty")]);
    let mut chatty = ModelInstance::create(registry.model("fixture/chatty").unwrap(), "{}").unwrap();
    chatty.load().unwrap();
    let outputs = with_batch_view(std::slice::from_ref(item), false, |batch| chatty.run(batch)).unwrap();
    let text = outputs[0].result.as_ref().unwrap().as_str().to_owned();
    assert!(text.ends_with(&format!("image_ptr={address:#x}")), "{text} vs {address:#x}");
}

/// An API model reports its requests in flight to the host's status line while a batch runs
/// (`karma.host.progress/1`), clears it at the end, and hands over each item's details.
#[test]
fn an_api_model_reports_requests_in_flight_and_item_details_to_the_host() {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use crate::fake_api::{FakeApi, Reply};

    let work = Workdir::new();
    let registry = registry(&work, &[crate::harness::api_plugin()]);
    let api =
        FakeApi::start(|_| Reply::openai_with("fine", "length", 3, 4).after(Duration::from_millis(700)));
    let statuses: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&statuses);
    karma_host::plugins::set_status_sink(Some(Arc::new(move |plugin: &str, status: &str| {
        assert_eq!(plugin, "libkarma_plugin_openai_compat.so");
        seen.lock().unwrap().push(status.to_owned());
    })));
    let config = serde_json::json!({
        "base_url": api.base_url(), "model_id": "m", "api_key_env": "", "max_concurrency": 2
    });
    let mut model =
        ModelInstance::create(registry.model("openai-compat/chat").unwrap(), &config.to_string()).unwrap();
    model.load().unwrap();
    let items = text_items(&["a", "b", "c", "d"]);
    let outputs = with_batch_view(&items, false, |batch| model.run(batch)).unwrap();
    let details = model.take_item_details().unwrap();
    karma_host::plugins::set_status_sink(None);
    assert_eq!(outputs.len(), 4);
    let statuses = statuses.lock().unwrap().clone();
    assert!(statuses.iter().any(|status| status.starts_with("2 requests in flight")), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some(""), "the status is cleared: {statuses:?}");
    let first: serde_json::Value = serde_json::from_str(&details[&1]).unwrap();
    assert_eq!((first["finish_reason"].as_str(), first["truncated"].as_bool()), (Some("length"), Some(true)));
    assert!(model.take_item_details().unwrap().is_empty(), "details are handed over once");
}
