//! Reading a whole bucket in one pass of direct gets (`kv::all_json`), against a real cluster:
//! the last value of every key, in key order, deleted keys left out, and nothing from an empty
//! bucket.

use brewq_launch::Role;
use brewq_launch::provision::{bench_bucket, create_scratch_stream};
use brewq_protocol::subjects;

use crate::harness::TestSystem;

#[tokio::test]
async fn all_json_reads_the_last_value_of_every_key_and_skips_deleted_ones() {
    let system = TestSystem::start(0, |_| {}).await;
    let config = system.system.nats_config(Role::Provisioner, "test").expect("provisioner config");
    let client = brewq_runtime::connect(&config).await.expect("provisioner connects");
    let jetstream = async_nats::jetstream::new(client.clone());
    create_scratch_stream(&jetstream, bench_bucket(3)).await.expect("scratch bucket");
    let store = jetstream.get_key_value(subjects::BENCH_BUCKET).await.expect("bind the bucket");

    let empty: Vec<u32> = brewq_runtime::kv::all_json(&client, &store).await.expect("an empty bucket reads");
    assert!(empty.is_empty(), "{empty:?}");

    for (key, value) in [("c", 3), ("a", 1), ("b", 2), ("d", 4)] {
        store.put(key, value.to_string().into()).await.expect("put");
    }
    store.put("a", "10".into()).await.expect("second put");
    store.delete("d").await.expect("delete");
    let values: Vec<u32> = brewq_runtime::kv::all_json(&client, &store).await.expect("the bucket reads");
    assert_eq!(values, [10, 2, 3], "last value of each key, by key, without the deleted one");

    jetstream.delete_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await.expect("drop the scratch bucket");
    system.stop().await;
}

/// `GroupWriter` against a real cluster: many compare-and-swaps at once go out in atomic
/// batches, each caller gets the revision its own write got, and a write that loses its race
/// fails alone (its batch is refused and sent again one write at a time).
#[tokio::test]
async fn group_writer_batches_waiting_writes_and_fails_only_the_one_that_lost() {
    let system = TestSystem::start(0, |_| {}).await;
    let config = system.system.nats_config(Role::Provisioner, "test").expect("provisioner config");
    let client = brewq_runtime::connect(&config).await.expect("provisioner connects");
    let jetstream = async_nats::jetstream::new(client.clone());
    let stream = async_nats::jetstream::stream::Config { allow_atomic_publish: true, ..bench_bucket(3) };
    create_scratch_stream(&jetstream, stream).await.expect("scratch bucket");
    let store = jetstream.get_key_value(subjects::BENCH_BUCKET).await.expect("bind the bucket");
    let taken = store.put("taken", "0".into()).await.expect("put");
    let (writer, task) = brewq_runtime::batch::GroupWriter::new(store.clone(), client);
    tokio::spawn(task);

    let keys: Vec<String> = (0..300).map(|index| format!("k{index:03}")).collect();
    let creates = keys.iter().map(|key| writer.write(key, b"1".to_vec(), 0));
    let (created, stale) = tokio::join!(futures::future::join_all(creates), writer.write("taken", b"2".to_vec(), 0));
    assert!(stale.is_err(), "a create over an existing key must fail: {stale:?}");
    let mut sequences = Vec::new();
    for (key, revision) in keys.iter().zip(created) {
        let revision = revision.unwrap_or_else(|error| panic!("{key}: {error:#}"));
        let entry = store.entry(key).await.expect("read").expect("written");
        assert_eq!(entry.revision, revision, "{key}: the revision the writer answered is the one stored");
        sequences.push(revision);
    }
    let updated = writer.write("taken", b"3".to_vec(), taken).await.expect("an update over the last revision lands");
    assert_eq!(store.entry("taken").await.expect("read").expect("written").revision, updated);

    // Writes that waited together went out as one batch: the server kept their batch id.
    let kv_stream = jetstream.get_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await.expect("stream");
    let mut batched = 0;
    for sequence in sequences {
        let message = kv_stream.get_raw_message(sequence).await.expect("raw message");
        batched += usize::from(message.headers.get("Nats-Batch-Id").is_some());
    }
    eprintln!("{batched} of 300 writes were batched");
    assert!(batched > 0, "no write went out in a batch");

    drop(writer);
    jetstream.delete_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await.expect("drop the scratch bucket");
    system.stop().await;
}
