//! `ClusterStore` (`kubo+http://…?cluster=…&replication=N`) against a real two-peer IPFS
//! Cluster on 127.0.0.1: each cluster peer drives its own Kubo node, both Kubo nodes in one
//! private swarm, the cluster with its own secret, CRDT consensus.
//!
//! Needs Kubo (`$FWLEDGER_KUBO` or `ipfs` on PATH) and IPFS Cluster
//! (`$FWLEDGER_IPFS_CLUSTER`: the `ipfs-cluster-service` binary, else on PATH;
//! `scripts/install-ipfs-cluster.sh` builds it). Skipped without them unless
//! `FWLEDGER_REQUIRE_KUBO=1` / `FWLEDGER_REQUIRE_CLUSTER=1`.

#![cfg(feature = "kubo")]

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::path::Path;
use std::time::Instant;

use cluster::{cluster_or_skip, free_port, ClusterPeer};
use common::kubo::{swarm_key, KuboDaemon};
use common::{kubo_or_skip, splitmix64_bytes};
use futures::TryStreamExt;
use fwledger_store::{cid_of_file, ClusterStore, KuboStore, Profile, Replication, StoreError};

/// Two Kubo nodes in one private swarm, each driven by a peer of one cluster.
struct Cluster {
    kubos: [KuboDaemon; 2],
    peers: [ClusterPeer; 2],
}

impl Cluster {
    async fn start(kubo: &Path, cluster: &Path) -> Cluster {
        let key = swarm_key();
        let kubos = [KuboDaemon::start(kubo, &key), KuboDaemon::start(kubo, &key)];
        kubos[1].connect(&kubos[0]).unwrap();
        // the cluster's own secret: 32 random bytes in hex, like a swarm key's last line
        let secret = swarm_key().lines().nth(2).unwrap().to_owned();
        let first = ClusterPeer::start(cluster, &secret, kubos[0].api_url(), None);
        let second = ClusterPeer::start(cluster, &secret, kubos[1].api_url(), Some(&first.listen));
        let mut peers = [first, second];
        peers[0].wait_for_peers(2);
        peers[1].wait_for_peers(2);
        Cluster { kubos, peers }
    }

    fn store_url(&self, replication: &str) -> String {
        format!(
            "{}?cluster={}&replication={replication}",
            self.kubos[0].store_url(),
            self.peers[0].rest
        )
    }
}

fn pinned_recursively(node: &KuboDaemon, cid: &str) -> bool {
    node.command()
        .args(["pin", "ls", "--type=recursive", cid])
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_pins_on_both_peers_with_replication_two() {
    let test = "publish_pins_on_both_peers_with_replication_two";
    let (Some(kubo), Some(cluster_bin)) = (kubo_or_skip(test), cluster_or_skip(test)) else {
        return;
    };
    let started = Instant::now();
    let cluster = Cluster::start(&kubo, &cluster_bin).await;
    eprintln!("cluster of 2 ready in {:?}", started.elapsed());
    let home = tempfile::tempdir().unwrap();
    let store = fwledger_store::open(&cluster.store_url("2"), home.path()).unwrap();

    let bytes = splitmix64_bytes(21, 3 * 1024 * 1024 + 7);
    let image = home.path().join("image.bin");
    std::fs::write(&image, &bytes).unwrap();
    for profile in Profile::ALL {
        // what `Vendor::publish` does: add, then pin
        let added = store.add_file(&image, profile, None).await.unwrap();
        assert_eq!(
            added.cid,
            cid_of_file(&image, profile).unwrap(),
            "{profile}"
        );
        assert!(
            !cluster.kubos[1]
                .command()
                .args(["block", "stat", "--offline", &added.cid])
                .output()
                .unwrap()
                .status
                .success(),
            "{profile}: the second node had the content before the cluster pin"
        );
        store.pin(&added.cid).await.unwrap();
        for (n, node) in cluster.kubos.iter().enumerate() {
            assert!(
                pinned_recursively(node, &added.cid),
                "{profile}: Kubo node {n} does not pin {}",
                added.cid
            );
        }
        // reads go through the first Kubo node, verified block by block
        let read: Vec<Vec<u8>> = store
            .get(&added.cid, bytes.len() as u64)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(read.concat() == bytes, "{profile}: bytes differ");
    }

    // the cluster agrees: both peers report the pin
    let kubo_store = KuboStore::new(cluster.kubos[0].api_url()).unwrap();
    let direct =
        ClusterStore::new(kubo_store, &cluster.peers[0].rest, Replication::exactly(2)).unwrap();
    let cid = cid_of_file(&image, Profile::default()).unwrap();
    let mut pinned = direct.pinned_on(&cid).await.unwrap();
    pinned.sort();
    let mut ids = vec![cluster.peers[0].id.clone(), cluster.peers[1].id.clone()];
    ids.sort();
    assert_eq!(pinned, ids);
    eprintln!("{test}: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_beyond_the_cluster_is_refused() {
    let test = "replication_beyond_the_cluster_is_refused";
    let (Some(kubo), Some(cluster_bin)) = (kubo_or_skip(test), cluster_or_skip(test)) else {
        return;
    };
    let cluster = Cluster::start(&kubo, &cluster_bin).await;
    let home = tempfile::tempdir().unwrap();
    let store = fwledger_store::open(&cluster.store_url("3"), home.path()).unwrap();
    let image = home.path().join("image.bin");
    std::fs::write(&image, b"three copies wanted, two peers").unwrap();
    let added = store
        .add_file(&image, Profile::default(), None)
        .await
        .unwrap();
    let err = store.pin(&added.cid).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("not enough peers to allocate")),
        "{err}"
    );
    // a cluster that cannot be reached is unavailable, not a hang
    let dead = format!(
        "{}?cluster=http://127.0.0.1:{}&replication=2",
        cluster.kubos[0].store_url(),
        free_port()
    );
    let err = fwledger_store::open(&dead, home.path())
        .unwrap()
        .pin(&added.cid)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("cannot connect")),
        "{err}"
    );
}
