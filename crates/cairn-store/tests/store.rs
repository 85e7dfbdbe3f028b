//! Store-level behaviour: restart, cross-partition `_id` uniqueness, realtime get,
//! refresh vs flush, retention.

use cairn_store::{Refresh, Store, StoreConfig, WriteKind, WriteRequest};
use serde_json::{json, Map, Value};

fn doc(v: Value) -> Option<Result<Map<String, Value>, cairn_core::EsError>> {
    Some(Ok(v.as_object().cloned().unwrap_or_default()))
}

fn req(kind: WriteKind, id: Option<&str>, v: Value) -> WriteRequest {
    WriteRequest {
        kind,
        index: "logs".into(),
        id: id.map(String::from),
        source: doc(v),
        raw: None,
    }
}

fn count(store: &Store) -> u64 {
    store.index("logs").map(|h| h.doc_count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_documents_and_mappings() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store =
            tokio::task::block_in_place(|| Store::open(StoreConfig::new(dir.path()))).unwrap();
        let reqs: Vec<WriteRequest> = (0..50)
            .map(|i| {
                req(
                    WriteKind::Index,
                    None,
                    json!({"@timestamp": "2026-01-01T00:00:00Z", "n": i, "message": "hello"}),
                )
            })
            .collect();
        let res = store.bulk(reqs, Refresh::True).await;
        assert!(res.iter().all(|r| r.error.is_none()));
        assert_eq!(count(&store), 50);
        tokio::task::block_in_place(|| store.shutdown());
    }
    // Without a flush in between: the second open replays nothing and keeps all.
    let store = tokio::task::block_in_place(|| Store::open(StoreConfig::new(dir.path()))).unwrap();
    assert_eq!(count(&store), 50);
    assert_eq!(
        store
            .index("logs")
            .unwrap()
            .mapping()
            .get("n")
            .unwrap()
            .ty
            .name(),
        "long"
    );
    tokio::task::block_in_place(|| store.shutdown());
}

// Crash recovery (kill -9, WAL replay) needs a real process to die: it is tested
// end to end in tests/e2e/test_durability.py.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_unique_across_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let store = tokio::task::block_in_place(|| Store::open(StoreConfig::new(dir.path()))).unwrap();
    let r = store
        .bulk(
            vec![req(
                WriteKind::Index,
                Some("a"),
                json!({"@timestamp": "2026-01-01T00:00:00Z", "v": 1}),
            )],
            Refresh::True,
        )
        .await;
    assert_eq!(r[0].status, 201);
    // Same id, another day: the old copy goes.
    let r = store
        .bulk(
            vec![req(
                WriteKind::Index,
                Some("a"),
                json!({"@timestamp": "2026-01-05T00:00:00Z", "v": 2}),
            )],
            Refresh::True,
        )
        .await;
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].result, Some("updated"));
    assert_eq!(count(&store), 1);
    let h = store.index("logs").unwrap();
    let src: Value = serde_json::from_slice(&store.get_source(&h, "a").await.unwrap()).unwrap();
    assert_eq!(src["v"], 2);
    // create on an existing id: 409, even before a refresh.
    store
        .bulk(
            vec![req(
                WriteKind::Index,
                Some("b"),
                json!({"@timestamp": "2026-01-02T00:00:00Z"}),
            )],
            Refresh::False,
        )
        .await;
    let r = store
        .bulk(
            vec![req(
                WriteKind::Create,
                Some("b"),
                json!({"@timestamp": "2026-01-03T00:00:00Z"}),
            )],
            Refresh::False,
        )
        .await;
    assert_eq!(r[0].status, 409);
    // Realtime get before refresh.
    assert!(store.get_source(&h, "b").await.is_some());
    // A deleted id can be created again: its term stays in the segment (which keeps a
    // live neighbour) until a merge, but the existence check counts live documents only.
    let ts = json!({"@timestamp": "2026-01-07T00:00:00Z"});
    let r = store
        .bulk(
            vec![
                req(WriteKind::Index, Some("x1"), ts.clone()),
                req(WriteKind::Index, Some("x2"), ts.clone()),
            ],
            Refresh::True,
        )
        .await;
    assert_eq!((r[0].status, r[1].status), (201, 201));
    let r = store
        .bulk(
            vec![req(WriteKind::Delete, Some("x1"), json!({}))],
            Refresh::True,
        )
        .await;
    assert_eq!(r[0].status, 200);
    let r = store
        .bulk(vec![req(WriteKind::Create, Some("x1"), ts)], Refresh::True)
        .await;
    assert_eq!(r[0].status, 201, "{:?}", r[0].error);
    tokio::task::block_in_place(|| store.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let store = tokio::task::block_in_place(|| Store::open(StoreConfig::new(dir.path()))).unwrap();
    store
        .create_index(
            "logs",
            &json!({"settings": {"index.cairn.retention": "2d"}}),
        )
        .unwrap();
    let now = cairn_core::time::now_micros();
    let old = cairn_core::time::format_millis(now - 5 * cairn_core::time::MICROS_PER_DAY);
    let new = cairn_core::time::format_millis(now);
    store
        .bulk(
            vec![
                req(WriteKind::Index, None, json!({"@timestamp": old})),
                req(WriteKind::Index, None, json!({"@timestamp": new})),
            ],
            Refresh::True,
        )
        .await;
    assert_eq!(count(&store), 2);
    assert_eq!(store.run_retention().await, 1);
    assert_eq!(count(&store), 1);
    tokio::task::block_in_place(|| store.shutdown());
}

#[test]
fn generated_ids_are_unique_and_share_their_prefix_and_tail() {
    let ids: Vec<String> = (0..200_000).map(|_| cairn_store::generate_id()).collect();
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    for id in &ids {
        assert_eq!(id.len(), 20, "{id}");
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{id}"
        );
    }
    // The process tag is the last 8 characters of every id.
    assert!(ids.iter().all(|id| id[12..] == ids[0][12..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_larger_than_a_chunk_keeps_ids_unique_and_order() {
    // A bulk is planned and logged in chunks of at most 2048 documents: ids claimed
    // in one chunk are seen by the next, and results keep the request's order.
    let dir = tempfile::tempdir().unwrap();
    let store = tokio::task::block_in_place(|| Store::open(StoreConfig::new(dir.path()))).unwrap();
    let n = 5000;
    let mut reqs: Vec<WriteRequest> = (0..n)
        .map(|i| {
            req(
                WriteKind::Create,
                Some(&format!("id-{i}")),
                json!({"@timestamp": "2026-01-01T00:00:00Z", "n": i}),
            )
        })
        .collect();
    // The same ids again, in later chunks: each is a conflict.
    reqs.push(req(WriteKind::Create, Some("id-0"), json!({"n": "again"})));
    reqs.push(req(
        WriteKind::Create,
        Some("id-4999"),
        json!({"n": "again"}),
    ));
    // An index of an id from the first chunk replaces it.
    reqs.push(req(
        WriteKind::Index,
        Some("id-1"),
        json!({"@timestamp": "2026-01-01T00:00:00Z", "n": -1}),
    ));
    let r = store.bulk(reqs, Refresh::True).await;
    assert_eq!(r.len(), n + 3);
    for (i, item) in r.iter().take(n).enumerate() {
        assert_eq!(
            (item.status, item.id.as_str()),
            (201, format!("id-{i}").as_str())
        );
    }
    assert_eq!(r[n].status, 409);
    assert_eq!(r[n + 1].status, 409);
    assert_eq!((r[n + 2].status, r[n + 2].result), (200, Some("updated")));
    assert_eq!(r[n + 2].version, 2);
    assert_eq!(count(&store), n as u64);
    let h = store.index("logs").unwrap();
    let src: Value = serde_json::from_slice(&store.get_source(&h, "id-1").await.unwrap()).unwrap();
    assert_eq!(src["n"], -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_get_refreshes_for_a_write_not_yet_visible() {
    // Pending writes keep no source: a get of one refreshes first, as Elasticsearch's
    // realtime get does, and sees the newest version; a pending delete is a miss.
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.refresh_interval = std::time::Duration::from_secs(3600);
    let store = tokio::task::block_in_place(|| Store::open(config)).unwrap();
    let write =
        |kind: WriteKind, v: Value| store.bulk(vec![req(kind, Some("a"), v)], Refresh::False);
    let ts = "2026-01-01T00:00:00Z";
    let r = write(WriteKind::Index, json!({"@timestamp": ts, "v": 1})).await;
    assert_eq!(r[0].status, 201);
    let h = store.index("logs").unwrap();
    assert_eq!(count(&store), 0, "not refreshed yet");
    let (src, version) = store.get_doc(&h, "a").await.expect("realtime");
    assert_eq!(serde_json::from_slice::<Value>(&src).unwrap()["v"], 1);
    assert_eq!(version, 1);
    assert_eq!(count(&store), 1, "the get refreshed");
    write(WriteKind::Index, json!({"@timestamp": ts, "v": 2})).await;
    let (src, version) = store.get_doc(&h, "a").await.expect("realtime");
    assert_eq!(serde_json::from_slice::<Value>(&src).unwrap()["v"], 2);
    assert_eq!(version, 2);
    write(WriteKind::Delete, json!({})).await;
    assert!(store.get_doc(&h, "a").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_generated_here_are_seen_before_a_refresh() {
    // Writes with generated ids stay out of the pending set; a realtime get, a create
    // and a delete naming one of those ids still see it before any refresh.
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.refresh_interval = std::time::Duration::from_secs(3600);
    let store = tokio::task::block_in_place(|| Store::open(config)).unwrap();
    let ts = "2026-01-01T00:00:00Z";
    let reqs = (0..3)
        .map(|i| req(WriteKind::Create, None, json!({"@timestamp": ts, "v": i})))
        .collect();
    let r = store.bulk(reqs, Refresh::False).await;
    assert!(r.iter().all(|r| r.status == 201));
    let ids: Vec<String> = r.iter().map(|r| r.id.clone()).collect();
    let h = store.index("logs").unwrap();
    assert_eq!(count(&store), 0, "not refreshed yet");
    let (src, _) = store.get_doc(&h, &ids[0]).await.expect("realtime");
    assert_eq!(serde_json::from_slice::<Value>(&src).unwrap()["v"], 0);

    let r = store
        .bulk(
            vec![req(
                WriteKind::Index,
                None,
                json!({"@timestamp": ts, "v": 3}),
            )],
            Refresh::False,
        )
        .await;
    let fresh = r[0].id.clone();
    let r = store
        .bulk(
            vec![req(
                WriteKind::Create,
                Some(&fresh),
                json!({"@timestamp": ts}),
            )],
            Refresh::False,
        )
        .await;
    assert_eq!(r[0].status, 409, "{:?}", r[0].error);
    let r = store
        .bulk(
            vec![
                req(WriteKind::Index, None, json!({"@timestamp": ts, "v": 4})),
                req(WriteKind::Delete, Some(&ids[1]), json!({})),
            ],
            Refresh::True,
        )
        .await;
    assert_eq!(r[1].status, 200, "{:?}", r[1].error);
    assert_eq!(count(&store), 4);
    tokio::task::block_in_place(|| store.shutdown());
}

/// Replaces and deletes, in one partition and across partitions, with documents not
/// yet refreshed or already committed, and with more partitions than open writers,
/// leave exactly one copy of each id, the newest, before and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_keep_one_copy_with_documents_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.refresh_interval = std::time::Duration::from_secs(3600);
    config.max_open_writers = 2;
    let store = tokio::task::block_in_place(|| Store::open(config.clone())).unwrap();
    let day = |d: u32| format!("2026-01-{d:02}T00:00:00Z");
    let write = |reqs: Vec<WriteRequest>| store.bulk(reqs, Refresh::False);
    let mut expect: std::collections::BTreeMap<String, i64> = Default::default();
    // Three partitions, interleaved, more than the two writers that may be open.
    let mut reqs = Vec::new();
    for i in 0..40 {
        for (p, d) in [("a", 1), ("b", 2), ("c", 3)] {
            let id = format!("{p}{i}");
            reqs.push(req(
                WriteKind::Index,
                Some(&id),
                json!({"@timestamp": day(d), "v": 0}),
            ));
            expect.insert(id, 0);
        }
    }
    write(reqs).await;
    // Before any refresh: replace in the same partition (the copy is in memory),
    // twice; move to another partition; delete.
    let mut reqs = Vec::new();
    for i in 0..10 {
        for v in [1, 2] {
            reqs.push(req(
                WriteKind::Index,
                Some(&format!("a{i}")),
                json!({"@timestamp": day(1), "v": v}),
            ));
        }
        expect.insert(format!("a{i}"), 2);
        reqs.push(req(
            WriteKind::Index,
            Some(&format!("b{i}")),
            json!({"@timestamp": day(1), "v": 3}),
        ));
        expect.insert(format!("b{i}"), 3);
        reqs.push(req(WriteKind::Delete, Some(&format!("c{i}")), json!({})));
        expect.remove(&format!("c{i}"));
    }
    write(reqs).await;
    store.refresh().await.unwrap();
    // After the refresh the old copies are on disk: replace them again, the new
    // copies going to memory, then into the same segment as further writes.
    let mut reqs = Vec::new();
    for i in 5..15 {
        reqs.push(req(
            WriteKind::Index,
            Some(&format!("a{i}")),
            json!({"@timestamp": day(1), "v": 4}),
        ));
        expect.insert(format!("a{i}"), 4);
        reqs.push(req(
            WriteKind::Index,
            Some(&format!("c{i}")),
            json!({"@timestamp": day(2), "v": 5}),
        ));
        expect.insert(format!("c{i}"), 5);
    }
    write(reqs).await;
    // A partition whose only document is deleted, then written again and replaced.
    write(vec![req(
        WriteKind::Index,
        Some("e"),
        json!({"@timestamp": day(4), "v": 0}),
    )])
    .await;
    store.refresh().await.unwrap();
    write(vec![req(WriteKind::Delete, Some("e"), json!({}))]).await;
    store.refresh().await.unwrap();
    for v in [6, 7] {
        write(vec![req(
            WriteKind::Index,
            Some("e"),
            json!({"@timestamp": day(4), "v": v}),
        )])
        .await;
    }
    expect.insert("e".into(), 7);
    check_newest(&store, &expect).await;
    tokio::task::block_in_place(|| store.shutdown());
    drop(store);
    let store = tokio::task::block_in_place(|| Store::open(config)).unwrap();
    check_newest(&store, &expect).await;
    tokio::task::block_in_place(|| store.shutdown());
}

/// Each id holds its expected `v`, `c0`..`c4` are gone, and nothing else is there.
async fn check_newest(store: &Store, expect: &std::collections::BTreeMap<String, i64>) {
    store.refresh().await.unwrap();
    let h = store.index("logs").unwrap();
    for (id, v) in expect {
        let src = store.get_source(&h, id).await.unwrap_or_default();
        let src: Value = serde_json::from_slice(&src).unwrap_or_default();
        assert_eq!(src["v"], *v, "{id}");
    }
    for i in 0..5 {
        assert!(store.get_source(&h, &format!("c{i}")).await.is_none());
    }
    assert_eq!(count(store), expect.len() as u64, "one copy of each id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_from_many_refreshes_are_merged() {
    // A partition refreshed thirty times still ends with few segments.
    let dir = tempfile::tempdir().unwrap();
    let store = tokio::task::block_in_place(|| Store::open(StoreConfig::new(dir.path()))).unwrap();
    for i in 0..30 {
        let r = store
            .bulk(
                vec![req(
                    WriteKind::Index,
                    None,
                    json!({"@timestamp": "2026-01-01T00:00:00Z", "n": i}),
                )],
                Refresh::True,
            )
            .await;
        assert_eq!(r[0].status, 201);
    }
    let h = store.index("logs").unwrap();
    let segments = || segments_of(&h)[0];
    let mut waited = 0;
    while segments() > 10 && waited < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(segments() <= 10, "{} segments", segments());
    assert_eq!(count(&store), 30);
    tokio::task::block_in_place(|| store.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_past_partitions_are_sealed_once_idle() {
    // One open writer and two past days written in turn: every write evicts the other
    // day's writer. Evictions do not merge; once both days are idle each is merged
    // down to one segment, and the merged commit is the one a restart opens.
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.max_open_writers = 1;
    config.idle_writer_close = std::time::Duration::from_millis(300);
    // Idle writers are closed at flushes.
    config.flush_interval = std::time::Duration::from_millis(500);
    let store = tokio::task::block_in_place(|| Store::open(config.clone())).unwrap();
    for i in 0..12 {
        for day in ["2026-01-01", "2026-01-02"] {
            let r = store
                .bulk(
                    vec![req(
                        WriteKind::Index,
                        None,
                        json!({"@timestamp": format!("{day}T00:00:00Z"), "n": i}),
                    )],
                    Refresh::True,
                )
                .await;
            assert_eq!(r[0].status, 201);
        }
    }
    let h = store.index("logs").unwrap();
    let segments = || segments_of(&h);
    let mut waited = 0;
    while segments() != [1, 1] && waited < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(segments(), [1, 1]);
    assert_eq!(count(&store), 24);
    drop(h);
    tokio::task::block_in_place(|| store.shutdown());
    let store = tokio::task::block_in_place(|| Store::open(config)).unwrap();
    let h = store.index("logs").unwrap();
    assert_eq!(segments_of(&h), [1, 1]);
    assert_eq!(count(&store), 24);
    tokio::task::block_in_place(|| store.shutdown());
}

fn segments_of(h: &cairn_store::IndexHandle) -> Vec<usize> {
    h.partitions_newest_first()
        .iter()
        .map(|p| p.reader.searcher().segment_readers().len())
        .collect()
}
