//! libFuzzer target `channel_message`: see [`fwledger_fuzz::channel_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::channel_message(data));
