use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::domain::{Digest, ImageId, ObjectName};

/// The attribute that names the data's schema.
pub const SCHEMA_ATTRIBUTE: &str = "schema";
pub const SCHEMA_NAME: &str = "catdog.image.v1";

/// "This picture is stored and waits for classification." The data of every
/// message, as JSON: `{"v": 1, "image_id": …, "object": …, "sha256": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageMessage {
    /// Schema version; only 1 exists.
    pub v: u32,
    pub image_id: ImageId,
    pub object: ObjectName,
    pub sha256: Digest,
}

impl ImageMessage {
    pub fn new(image_id: ImageId, object: ObjectName, sha256: Digest) -> Self {
        Self {
            v: 1,
            image_id,
            object,
            sha256,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and a number cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(data: &[u8]) -> Result<Self, MessageError> {
        let message: Self =
            serde_json::from_slice(data).map_err(|e| MessageError::BadData(e.to_string()))?;
        if message.v != 1 {
            return Err(MessageError::UnknownVersion(message.v));
        }
        Ok(message)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("the push envelope is malformed: {0}")]
    BadEnvelope(String),
    #[error("the message data is not base64")]
    BadBase64,
    #[error("the message data is malformed: {0}")]
    BadData(String),
    #[error("unknown message schema version {0}")]
    UnknownVersion(u32),
}

/// What a Pub/Sub push subscription POSTs:
/// `{"message": {"data", "attributes", "messageId", "publishTime"}, "subscription"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushEnvelope {
    pub message: PushMessage,
    pub subscription: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushMessage {
    /// Base64 of the data.
    pub data: String,
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    pub message_id: String,
    pub publish_time: String,
    /// Pub/Sub sends both spellings; we only read the camelCase ones.
    #[serde(default, rename = "message_id", skip_serializing)]
    pub message_id_snake: Option<String>,
    #[serde(default, rename = "publish_time", skip_serializing)]
    pub publish_time_snake: Option<String>,
}

impl PushEnvelope {
    /// Wraps a message as Pub/Sub would deliver it.
    pub fn wrap(message: &ImageMessage, message_id: &str, subscription: &str) -> Self {
        Self {
            message: PushMessage {
                data: STANDARD.encode(message.to_json()),
                attributes: HashMap::from([(SCHEMA_ATTRIBUTE.to_owned(), SCHEMA_NAME.to_owned())]),
                message_id: message_id.to_owned(),
                publish_time: chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                message_id_snake: None,
                publish_time_snake: None,
            },
            subscription: subscription.to_owned(),
        }
    }

    /// Parses a push request body strictly: the envelope, then the data.
    pub fn parse(body: &[u8]) -> Result<(Self, ImageMessage), MessageError> {
        let envelope: Self =
            serde_json::from_slice(body).map_err(|e| MessageError::BadEnvelope(e.to_string()))?;
        let data = STANDARD
            .decode(envelope.message.data.as_bytes())
            .map_err(|_| MessageError::BadBase64)?;
        let message = ImageMessage::from_json(&data)?;
        Ok((envelope, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageMessage {
        let id = ImageId::new();
        ImageMessage::new(id, ObjectName::original(id), Digest::of(b"picture"))
    }

    #[test]
    fn envelopes_round_trip() {
        let message = sample();
        let envelope = PushEnvelope::wrap(&message, "1", "projects/p/subscriptions/s");
        let body = serde_json::to_vec(&envelope).unwrap();
        let (parsed, data) = PushEnvelope::parse(&body).unwrap();
        assert_eq!(data, message);
        assert_eq!(parsed.message.message_id, "1");
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        assert!(matches!(
            PushEnvelope::parse(b"{}"),
            Err(MessageError::BadEnvelope(_))
        ));
        assert!(matches!(
            PushEnvelope::parse(b"\xff"),
            Err(MessageError::BadEnvelope(_))
        ));
        let bad_b64 =
            br#"{"message":{"data":"***","messageId":"1","publishTime":"t"},"subscription":"s"}"#;
        assert_eq!(PushEnvelope::parse(bad_b64), Err(MessageError::BadBase64));
        let data = STANDARD.encode(br#"{"v":1,"image_id":"../x","object":"x","sha256":"y"}"#);
        let body = format!(
            r#"{{"message":{{"data":"{data}","messageId":"1","publishTime":"t"}},"subscription":"s"}}"#
        );
        assert!(matches!(
            PushEnvelope::parse(body.as_bytes()),
            Err(MessageError::BadData(_))
        ));
    }
}
