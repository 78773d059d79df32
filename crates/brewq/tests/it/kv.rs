//! Reading a whole bucket in one pass (`kv::all_json`), against a real cluster: the last value
//! of every key, in key order, deleted keys left out, and nothing from an empty bucket.

use brewq_launch::Role;
use brewq_launch::provision::bench_bucket;
use brewq_protocol::subjects;

use crate::harness::TestSystem;

#[tokio::test]
async fn all_json_reads_the_last_value_of_every_key_and_skips_deleted_ones() {
    let system = TestSystem::start(0, |_| {}).await;
    let config = system.system.nats_config(Role::Provisioner, "test").expect("provisioner config");
    let client = brewq_runtime::connect(&config).await.expect("provisioner connects");
    let jetstream = async_nats::jetstream::new(client);
    jetstream.create_or_update_stream(bench_bucket(3)).await.expect("scratch bucket");
    let store = jetstream.get_key_value(subjects::BENCH_BUCKET).await.expect("bind the bucket");

    let empty: Vec<u32> = brewq_runtime::kv::all_json(&store).await.expect("an empty bucket reads");
    assert!(empty.is_empty(), "{empty:?}");

    for (key, value) in [("c", 3), ("a", 1), ("b", 2), ("d", 4)] {
        store.put(key, value.to_string().into()).await.expect("put");
    }
    store.put("a", "10".into()).await.expect("second put");
    store.delete("d").await.expect("delete");
    let values: Vec<u32> = brewq_runtime::kv::all_json(&store).await.expect("the bucket reads");
    assert_eq!(values, [10, 2, 3], "last value of each key, by key, without the deleted one");

    jetstream.delete_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await.expect("drop the scratch bucket");
    system.stop().await;
}
