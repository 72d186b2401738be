//! libFuzzer target `channel_feed`: see [`fwledger_fuzz::channel_feed`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::channel_feed(data));
