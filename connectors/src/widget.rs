//! The website widget's outbound side. A widget has no provider to call: an operator's reply
//! is committed to the store, and the visitor's sockets are told by the hub (the visitor's
//! session) and read it from there, also after a reconnect. So "sending" is handing over to
//! the store, which has already happened when this is called; the message counts as sent,
//! and the visitor's sockets move it on to delivered and read.

use async_trait::async_trait;

use crate::{OutboundChannel, OutboundMessage, SendError, SendReceipt};

/// The outbound side of every widget channel.
#[derive(Clone, Copy, Debug, Default)]
pub struct WidgetChannel;

#[async_trait]
impl OutboundChannel for WidgetChannel {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        // The message id names it for the visitor's delivery and read marks.
        Ok(SendReceipt {
            provider_message_id: Some(message.message_id.to_string()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use omnihub_core::MessageId;

    use super::*;

    #[tokio::test]
    async fn a_reply_is_sent_under_its_own_id() {
        let id = MessageId::new();
        let receipt = WidgetChannel
            .send(&OutboundMessage::text(id, "visitor", "hello", "key"))
            .await
            .unwrap();
        assert_eq!(receipt.provider_message_id, Some(id.to_string()));
    }
}
