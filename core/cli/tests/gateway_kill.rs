//! Crash safety of the gateway's repository: `fwledger gateway run` is SIGKILLed while it
//! downloads a release, restarted, and killed again; a file under its final name is always the
//! complete, verified image, and a restarted gateway finishes the download by itself.

mod common;
use common::*;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

fn start(home: &Path, log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    fwledger(home)
        .args(["gateway", "run"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// Kills whatever this test started under `home` (gateways and their mosquitto), also when the
/// test fails, so no broker outlives it.
struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(self.0.as_os_str())
            .status();
    }
}

/// Every file under a final (64-hex) name is the complete image.
fn assert_repository_consistent(repo: &Path, image: &[u8], sha: &str) {
    let Ok(entries) = std::fs::read_dir(repo) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            assert_eq!(name, sha, "unexpected repository file");
            let bytes = std::fs::read(entry.path()).unwrap();
            assert_eq!(
                bytes.len(),
                image.len(),
                "a complete-looking file is partial"
            );
            assert!(
                bytes == image,
                "a complete-looking file differs from the image"
            );
        }
    }
}

#[test]
fn gateway_killed_mid_download_never_leaves_a_corrupt_file() {
    assert!(
        fwledger_gateway::broker::find_mosquitto(None).is_ok(),
        "this test needs mosquitto: apt-get install -y mosquitto"
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let _cleanup = KillOnDrop(home.clone());
    ok(&home, &["vendor", "init", "--name", "acme"]);
    let token = ok(&home, &["vendor", "token", "--gateway", "hub"]);
    let (mqtt, https, sntp) = (free_port(), free_port(), free_port());
    ok(
        &home,
        &[
            "gateway",
            "init",
            "--mqtt-port",
            &mqtt,
            "--https-port",
            &https,
            "--sntp-port",
            &sntp,
        ],
    );
    ok(&home, &["gateway", "subscribe", token.trim()]);
    ok(
        &home,
        &[
            "gateway",
            "device",
            "add",
            "--id",
            "lamp-1",
            "--mac",
            "02:00:00:00:00:01",
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--out",
            dir.path().join("b.json").to_str().unwrap(),
        ],
    );
    // Large enough that a download takes a while; pseudo-random so no block repeats.
    let mut image = vec![0u8; 192 * 1024 * 1024];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for chunk in image.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let sha = hex::encode(Sha256::digest(&image));
    let image_path = dir.path().join("fw.bin");
    std::fs::write(&image_path, &image).unwrap();
    ok(
        &home,
        &[
            "vendor",
            "publish",
            image_path.to_str().unwrap(),
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--version",
            "2.0.0",
        ],
    );

    let repo = home.join("gateway").join("repository");
    let log = dir.path().join("gateway.log");
    let final_file = repo.join(&sha);
    let mut kills_mid_download = 0;
    for round in 0..4 {
        let mut gateway = start(&home, &log);
        // Kill as soon as a partial download exists (or after a while, if none appears).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let partial = std::fs::read_dir(&repo).ok().is_some_and(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().contains(".part-"))
            });
            if partial || final_file.exists() || Instant::now() > deadline {
                if partial {
                    kills_mid_download += 1;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(20 * round));
        gateway.kill().unwrap(); // SIGKILL
        gateway.wait().unwrap();
        assert_repository_consistent(&repo, &image, &sha);
        if final_file.exists() {
            break;
        }
    }
    assert!(
        kills_mid_download > 0,
        "the gateway was never killed mid-download"
    );

    // A restarted gateway finishes the download by itself and cleans up partial files.
    let mut gateway = start(&home, &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !final_file.exists() {
        let exited = gateway.try_wait().unwrap();
        if exited.is_some() || Instant::now() > deadline {
            let status = ok(&home, &["gateway", "status"]);
            panic!(
                "the restarted gateway never finished the download (exit: {exited:?})\n\
                 --- gateway log ---\n{}\n--- gateway status ---\n{status}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    // SIGTERM: a clean stop (which also stops mosquitto).
    let _ = Command::new("kill").arg(gateway.id().to_string()).status();
    let _ = gateway.wait();
    assert_repository_consistent(&repo, &image, &sha);
    let leftovers: Vec<String> = std::fs::read_dir(&repo)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "partial files left behind: {leftovers:?}"
    );
}
