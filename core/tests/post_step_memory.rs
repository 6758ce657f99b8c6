//! A POST handed over in steps (`Session::step_posts`) holds what is left of it as the body's
//! bytes, not as packets: its packets are decoded as each step reads them. Decoded at once, a
//! 1 MB body of `42[0]` (about 150,000 packets, each with its data in an allocation of its own)
//! held about 15 MB until its last step.
//! The only test of this binary, so that no other test allocates while it counts.

mod support;

use std::alloc::System;
use std::num::NonZeroU32;

use sockio_core::engineio::{EngineConfig, EngineEvent, PacketData};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::*;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The packets of the body: `4<index>`.
const PACKETS: usize = 20_000;

#[test]
fn a_stepped_post_holds_its_rest_as_the_body() {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    for eio in ["4", "3"] {
        let mut h = Harness::engine(config.clone());
        let sid = h.open_polling(&format!("EIO={eio}"));
        let step = NonZeroU32::new(1).expect("a step of one message");
        h.command(&sid, |s, _| s.step_posts(step));
        let uri = format!("/engine.io/?EIO={eio}&transport=polling&sid={sid}");
        let packets: Vec<String> = (0..PACKETS).map(|index| format!("4{index}")).collect();
        let body = if eio == "3" {
            v3_payload(&packets.iter().map(String::as_str).collect::<Vec<_>>())
        } else {
            packets.join("\x1e")
        };
        let region = Region::new(ALLOCATOR);
        let post = h.post(&uri, body.as_bytes()).held();
        let change = region.change();
        let held = change.bytes_allocated as isize - change.bytes_deallocated as isize
            + change.bytes_reallocated;
        // The request's copy of the body, and what the harness keeps of the first step.
        let bound = 2 * body.len() as isize + 64 * 1024;
        assert!(
            held <= bound,
            "EIO={eio}: {held} bytes held for a body of {}, more than {bound}",
            body.len()
        );
        // Every packet still comes, in order, one step at a time.
        let mut handed = h.take_events(&sid);
        while h.sessions[sid.as_str()].unfinished_post() == Some(post) {
            h.command(&sid, |s, now| s.handle_post_step(now));
            handed.extend(h.take_events(&sid));
        }
        let expected: Vec<EngineEvent> = (0..PACKETS)
            .map(|index| EngineEvent::Message(PacketData::Text(index.to_string().into())))
            .collect();
        assert!(handed == expected, "EIO={eio}: {} events", handed.len());
        assert!(
            h.take_response(post).is_some(),
            "answered after the last step"
        );
    }
}
