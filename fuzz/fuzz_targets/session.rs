//! Any bytes given as a .pathscope session: a session or an error naming the problem
//! (not a session, damaged, newer format), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pathscope::session::Session::from_bytes(std::path::Path::new("fuzz.pathscope"), data);
});
