//! CID throughput over a 256 MiB in-memory buffer, per profile.
//!
//! `cargo bench -p fwledger-store --bench cid`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fwledger_store::{cid_of_reader, Profile};

const SIZE: usize = 256 * 1024 * 1024;

/// SplitMix64 bytes (the generator of tests/vectors/cid.json, seed 1): incompressible, so no
/// layer can shortcut on repeated chunks.
fn data() -> Vec<u8> {
    let mut state = 1u64;
    let mut out = Vec::with_capacity(SIZE);
    while out.len() < SIZE {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out
}

fn cid_throughput(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("cid_256MiB");
    group
        .throughput(Throughput::Bytes(SIZE as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for profile in Profile::ALL {
        group.bench_function(profile.name(), |b| {
            b.iter(|| cid_of_reader(data.as_slice(), profile).expect("in-memory input"))
        });
    }
    group.finish();
}

criterion_group!(benches, cid_throughput);
criterion_main!(benches);
