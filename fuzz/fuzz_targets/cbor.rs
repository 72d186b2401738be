//! libFuzzer target `cbor`: see [`fwledger_fuzz::cbor`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::cbor(data));
