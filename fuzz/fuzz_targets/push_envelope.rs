//! `POST /pubsub/push` bodies: whatever the parser accepts must be a message
//! we could have published ourselves, and nothing may panic.
#![no_main]

use catdog::pubsub::{ImageMessage, PushEnvelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok((envelope, message)) = PushEnvelope::parse(body) else {
        return;
    };
    assert_eq!(message.v, 1, "only schema version 1 is accepted");
    // The data survives being published again and delivered again.
    assert_eq!(ImageMessage::from_json(&message.to_json()), Ok(message.clone()));
    let again = PushEnvelope::wrap(
        &message,
        &envelope.message.message_id,
        &envelope.subscription,
    );
    let bytes = serde_json::to_vec(&again).expect("an envelope serialises");
    let (_, reparsed) = PushEnvelope::parse(&bytes).expect("our own envelope parses");
    assert_eq!(reparsed, message);
});
