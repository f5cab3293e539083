//! Fuzz target: see `offboard::fuzzing::imapsync_args`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| offboard::fuzzing::imapsync_args(data));
