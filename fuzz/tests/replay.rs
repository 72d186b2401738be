//! Replays the kept fuzz corpus (`fuzz/corpus/<target>/`) and every crash reproducer
//! (`fuzz/regressions/<target>/`) through the harnesses, on the ordinary stable build: a
//! regression in any decoder fails `cargo test --workspace` without cargo-fuzz.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use fwledger_fuzz::TARGETS;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

/// Runs every file under `kind/<target>/`; returns (inputs run, failures).
fn replay(kind: &str) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    let mut run = 0;
    let mut failures = Vec::new();
    for (name, harness) in TARGETS {
        for file in files(&root.join(name)) {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            run += 1;
            if catch_unwind(AssertUnwindSafe(|| harness(&data))).is_err() {
                failures.push(format!("{name}: {}", file.display()));
            }
        }
    }
    // Directories that name no target are a typo that would silently skip inputs.
    for dir in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if dir.path().is_dir() && !TARGETS.iter().any(|(t, _)| *t == name) {
            failures.push(format!("{kind}/{name}: no such target"));
        }
    }
    (run, failures)
}

#[test]
fn every_target_has_a_kept_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, _) in TARGETS {
        let n = files(&root.join(name)).len();
        assert!(n > 0, "fuzz/corpus/{name} is empty");
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz_targets/{name}.rs"));
        assert!(target.is_file(), "no libFuzzer target {}", target.display());
    }
}

#[test]
fn kept_corpus_replays_cleanly() {
    let (run, failures) = replay("corpus");
    assert!(run > 0, "no corpus input was run");
    assert!(
        failures.is_empty(),
        "{} of {run} inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn crash_reproducers_stay_fixed() {
    let (_, failures) = replay("regressions");
    assert!(
        failures.is_empty(),
        "reproducers fail again:\n{}",
        failures.join("\n")
    );
}

#[test]
fn harnesses_take_garbage_and_genuine_input() {
    for (name, harness) in TARGETS {
        for data in [
            &b""[..],
            b"\x00",
            b"\xff\xff\xff\xff",
            b"bytes=0-",
            &[0xa5; 300],
        ] {
            assert!(catch_unwind(|| harness(data)).is_ok(), "{name} on {data:?}");
        }
    }
    // The record codec the structure-aware targets read round-trips.
    let records = [(1u8, &b"abc"[..]), (0, b""), (7, b"x")];
    assert_eq!(
        fwledger_fuzz::records(&fwledger_fuzz::encode_records(&records)),
        records
    );
}
