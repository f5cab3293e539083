//! Fuzz target: see `offboard::fuzzing::mutf7`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| offboard::fuzzing::mutf7(data));
