//! Prints the CID of a file, like `ipfs add --only-hash -Q`.
//!
//! `cargo run --release -p fwledger-store --example cid -- FILE [unixfs-v1-2025|unixfs-v0-2015]`

use std::path::Path;
use std::process::ExitCode;

use fwledger_store::{cid_of_file, Profile};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, profile) = match args.as_slice() {
        [file] => (file, Ok(Profile::default())),
        [file, profile] => (file, profile.parse::<Profile>()),
        _ => {
            eprintln!("usage: cid FILE [unixfs-v1-2025|unixfs-v0-2015]");
            return ExitCode::from(2);
        }
    };
    match profile.and_then(|p| cid_of_file(Path::new(file), p)) {
        Ok(cid) => {
            println!("{cid}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cid: {e}");
            ExitCode::FAILURE
        }
    }
}
