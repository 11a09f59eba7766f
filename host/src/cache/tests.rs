//! The cache on real SQLite files: round trips, versioned extractions, merging pending outputs,
//! converting old files, clearing by model.

use super::*;

fn output(text: &str) -> CachedOutput {
    CachedOutput {
        raw_output: text.into(),
        prompt_tokens: Some(3),
        completion_tokens: None,
        latency_us: 9,
        details: None,
    }
}

#[test]
fn outputs_and_versioned_extractions_round_trip() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("nested/cache.sqlite");
    let mut cache = Cache::open(&path).unwrap();
    let (first, second, absent) = (CacheKey([1; 32]), CacheKey([2; 32]), CacheKey([3; 32]));
    cache
        .store_batch(
            &[
                NewOutput { key: first, model: "m", output: output("A") },
                NewOutput { key: second, model: "m", output: output("zz") },
            ],
            &[(first, Some("A".into())), (second, None)],
            "mcq_letter",
            1,
        )
        .unwrap();
    drop(cache);
    let cache = Cache::open(&path).unwrap();
    let found = cache.get_outputs_with_extractions(&[first, absent, second], "mcq_letter", 1).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[&first].0, output("A"));
    let joined = cache.get_outputs_with_extractions(&[first, second, absent], "mcq_letter", 1).unwrap();
    assert_eq!(joined.len(), 2);
    assert_eq!(joined[&first], (output("A"), Some(CachedExtraction { prediction: Some("A".into()) })));
    assert_eq!(
        joined[&second].1,
        Some(CachedExtraction { prediction: None }),
        "an unparsed answer is remembered"
    );
    let new_rule = cache.get_outputs_with_extractions(&[first], "mcq_letter", 2).unwrap();
    assert_eq!(new_rule[&first].1, None, "a new rule version has no extraction yet");
    // Extractions made later, under the new rule, come from the extractions table.
    let mut cache = cache;
    cache.store_batch(&[], &[(first, Some("B".into())), (second, None)], "mcq_letter", 2).unwrap();
    let rescored = cache.get_outputs_with_extractions(&[second, absent, first], "mcq_letter", 2).unwrap();
    assert_eq!(rescored[&first], (output("A"), Some(CachedExtraction { prediction: Some("B".into()) })));
    assert_eq!(rescored[&second], (output("zz"), Some(CachedExtraction { prediction: None })));
    let stats = cache.stats().unwrap();
    assert_eq!((stats.outputs, stats.extractions, stats.models.clone()), (2, 4, vec![("m".to_owned(), 2)]));
}

#[test]
fn pending_outputs_are_merged_on_request_and_at_open_later_ones_winning() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("c.sqlite");
    let mut cache = Cache::open(&path).unwrap();
    let key = CacheKey([7; 32]);
    let store = |cache: &mut Cache, text: &str| {
        cache
            .store_batch(&[NewOutput { key, model: "m", output: output(text) }], &[(key, None)], "e", 1)
            .unwrap()
    };
    store(&mut cache, "first");
    store(&mut cache, "second");
    assert!(
        cache.get_outputs_with_extractions(&[key], "e", 1).unwrap().is_empty(),
        "committed but pending until merged"
    );
    assert_eq!(cache.stats().unwrap().outputs, 2, "pending rows are counted");
    cache.merge_pending().unwrap();
    assert_eq!(cache.get_outputs_with_extractions(&[key], "e", 1).unwrap()[&key].0, output("second"));
    assert_eq!(cache.stats().unwrap().outputs, 1);

    // A run killed before merging leaves its outputs pending: the next open merges them.
    store(&mut cache, "third");
    drop(cache);
    let cache = Cache::open(&path).unwrap();
    assert_eq!(cache.get_outputs_with_extractions(&[key], "e", 1).unwrap()[&key].0, output("third"));
}

#[test]
fn version_2_files_are_converted_in_place_and_newer_ones_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("v2.sqlite");
    let key = CacheKey([9; 32]);
    {
        // The version 2 layout: outputs clustered on the whole key.
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO meta VALUES ('schema_version', '2');
                 CREATE TABLE outputs (key BLOB PRIMARY KEY, model TEXT NOT NULL, raw_output TEXT NOT NULL,
                     prompt_tokens INTEGER, completion_tokens INTEGER, latency_us INTEGER NOT NULL,
                     created_at INTEGER NOT NULL, extractor TEXT, extractor_version INTEGER, prediction TEXT
                 ) WITHOUT ROWID;",
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO outputs VALUES (?1, 'm', 'old answer', 3, NULL, 9, 0, 'e', 1, 'A')",
                [key.0.as_slice()],
            )
            .unwrap();
    }
    let cache = Cache::open(&path).unwrap();
    let found = cache.get_outputs_with_extractions(&[key], "e", 1).unwrap();
    assert_eq!(found[&key], (output("old answer"), Some(CachedExtraction { prediction: Some("A".into()) })));
    drop(cache);

    Connection::open(&path).unwrap().execute("UPDATE meta SET value = '5'", []).unwrap();
    let error = Cache::open(&path).err().unwrap().to_string();
    assert!(error.contains("schema version 5, newer than this karma-host knows (4)"), "{error}");
}

#[test]
fn version_3_files_gain_the_details_column_and_keep_their_outputs() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("v3.sqlite");
    let (old, new) = (CacheKey([3; 32]), CacheKey([4; 32]));
    {
        let mut cache = Cache::open(&path).unwrap();
        cache.store_batch(&[NewOutput { key: old, model: "m", output: output("old") }], &[], "e", 1).unwrap();
        cache.merge_pending().unwrap();
    }
    // Back to the version 3 layout: the same tables without `details`.
    let connection = Connection::open(&path).unwrap();
    connection
        .execute_batch(
            "ALTER TABLE outputs DROP COLUMN details; ALTER TABLE pending_outputs DROP COLUMN details;
             UPDATE meta SET value = '3' WHERE key = 'schema_version';",
        )
        .unwrap();
    drop(connection);
    let mut cache = Cache::open(&path).unwrap();
    let detailed = CachedOutput { details: Some(r#"{"finish_reason":"length"}"#.into()), ..output("new") };
    cache.store_batch(&[NewOutput { key: new, model: "m", output: detailed.clone() }], &[], "e", 1).unwrap();
    cache.merge_pending().unwrap();
    let found = cache.get_outputs_with_extractions(&[old, new], "e", 1).unwrap();
    assert_eq!(found[&old].0, output("old"));
    assert_eq!(found[&new].0, detailed);
}

#[test]
fn keys_sharing_their_first_bytes_do_not_answer_for_each_other() {
    let directory = tempfile::tempdir().unwrap();
    let mut cache = Cache::open(&directory.path().join("c.sqlite")).unwrap();
    let stored = CacheKey([5; 32]);
    let mut other = [5; 32];
    other[31] = 6;
    let other = CacheKey(other);
    cache.store_batch(&[NewOutput { key: stored, model: "m", output: output("x") }], &[], "e", 1).unwrap();
    cache.merge_pending().unwrap();
    let found = cache.get_outputs_with_extractions(&[other, stored], "e", 1).unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), vec![&stored]);
}

#[test]
fn clear_by_model() {
    let directory = tempfile::tempdir().unwrap();
    let mut cache = Cache::open(&directory.path().join("c.sqlite")).unwrap();
    cache
        .store_batch(
            &[
                NewOutput { key: CacheKey([1; 32]), model: "a", output: output("x") },
                NewOutput { key: CacheKey([2; 32]), model: "b", output: output("y") },
            ],
            &[(CacheKey([1; 32]), None)],
            "e",
            1,
        )
        .unwrap();
    assert_eq!(cache.clear(Some("a")).unwrap(), 1);
    let stats = cache.stats().unwrap();
    assert_eq!((stats.outputs, stats.extractions), (1, 0));
}
