//! Classifies grammers' failures into the ports' [`TelegramError`]: the one place that reads
//! `InvocationError` (RPC name/code/value, I/O, transport, dropped pool…). Everything above
//! `telegram/` sees only [`TelegramError`] and its [`crate::ports::RetryClass`]. Pure: no
//! I/O, no clock.

use grammers_mtsender::{InvocationError, RpcError};

use crate::ports::TelegramError;

impl TelegramError {
    /// Classifies a grammers failure.
    pub fn from_invocation(error: &InvocationError) -> Self {
        match error {
            InvocationError::Rpc(rpc) => Self::from_rpc(rpc),
            InvocationError::Io(e) => Self::ConnectionLost(format!("io: {e}")),
            InvocationError::Transport(e) => Self::ConnectionLost(format!("transport: {e}")),
            InvocationError::Dropped(why) => Self::ConnectionLost(format!("dropped: {why}")),
            InvocationError::Deserialize(e) => Self::Other(format!("bad response: {e}")),
            InvocationError::InvalidDc => Self::Other("unknown dc".into()),
            InvocationError::Session(e) => Self::Other(format!("session storage: {e}")),
            InvocationError::Authentication(e) => Self::Other(format!("key exchange: {e}")),
        }
    }

    /// Classifies an RPC error by its name first (names are what Telegram documents), then by
    /// its code for the families the name does not pin down.
    pub fn from_rpc(rpc: &RpcError) -> Self {
        let name = rpc.name.as_str();
        match name {
            "FLOOD_WAIT" | "FLOOD_PREMIUM_WAIT" | "SLOWMODE_WAIT" | "FLOOD_TEST_PHONE_WAIT" => {
                // A missing value is still a flood wait; one second keeps the bot out briefly.
                return Self::FloodWait {
                    secs: rpc.value.unwrap_or(1),
                };
            }
            "FILE_MIGRATE" => {
                return match rpc.value.and_then(|v| i32::try_from(v).ok()) {
                    Some(dc) => Self::FileMigrate { dc },
                    None => Self::Other(format!("{name} without a dc")),
                };
            }
            // grammers strips the digit, so FILE_REFERENCE_0_EXPIRED arrives as this name too.
            "FILE_REFERENCE_EXPIRED" | "FILE_REFERENCE_INVALID" | "FILE_REFERENCE_EMPTY" => {
                return Self::FileReferenceExpired;
            }
            "AUTH_KEY_UNREGISTERED" => return Self::AuthKeyUnregistered,
            "ACCESS_TOKEN_INVALID"
            | "ACCESS_TOKEN_EXPIRED"
            | "BOT_INVALID"
            | "USER_DEACTIVATED"
            | "USER_DEACTIVATED_BAN"
            | "SESSION_REVOKED" => return Self::AccessTokenInvalid,
            "CHANNEL_PRIVATE" | "CHANNEL_INVALID" | "CHAT_ADMIN_REQUIRED" => {
                return Self::ChannelPrivate;
            }
            "MESSAGE_ID_INVALID" | "MSG_ID_INVALID" | "MESSAGE_EMPTY" => {
                return Self::MessageNotFound;
            }
            "LIMIT_INVALID" | "OFFSET_INVALID" => return Self::LimitOrOffsetInvalid,
            _ => {}
        }
        match rpc.code {
            420 => Self::FloodWait {
                secs: rpc.value.unwrap_or(1),
            },
            401 => Self::AuthKeyUnregistered,
            code if code >= 500 || code == -500 || code == -503 => {
                Self::Internal(format!("{code} {name}"))
            }
            code => Self::Other(format!("{code} {name}")),
        }
    }
}

impl From<InvocationError> for TelegramError {
    fn from(error: InvocationError) -> Self {
        Self::from_invocation(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::Penalty;
    use crate::ports::RetryClass;
    use grammers_tl_types as tl;

    /// Builds the RpcError grammers would build from a raw `rpc_error` message.
    fn rpc(code: i32, message: &str) -> InvocationError {
        InvocationError::Rpc(RpcError::from(tl::types::RpcError {
            error_code: code,
            error_message: message.into(),
        }))
    }

    fn classify(code: i32, message: &str) -> TelegramError {
        TelegramError::from(rpc(code, message))
    }

    #[test]
    fn flood_waits_carry_their_seconds() {
        assert_eq!(
            classify(420, "FLOOD_WAIT_30"),
            TelegramError::FloodWait { secs: 30 }
        );
        assert_eq!(
            classify(420, "FLOOD_PREMIUM_WAIT_7"),
            TelegramError::FloodWait { secs: 7 }
        );
        assert_eq!(
            classify(420, "SOMETHING_NEW_WAIT"),
            TelegramError::FloodWait { secs: 1 }
        );
        assert_eq!(
            classify(420, "FLOOD_WAIT_30").retry_class(),
            RetryClass::RetryOtherBot
        );
        assert!(classify(420, "FLOOD_WAIT_3").is_flood_wait());
    }

    #[test]
    fn file_migrate_names_the_dc() {
        let error = classify(303, "FILE_MIGRATE_4");
        assert_eq!(error, TelegramError::FileMigrate { dc: 4 });
        assert_eq!(error.retry_class(), RetryClass::MigrateAndRetry);
    }

    #[test]
    fn stale_references_refresh() {
        for message in ["FILE_REFERENCE_EXPIRED", "FILE_REFERENCE_0_EXPIRED"] {
            let error = classify(400, message);
            assert_eq!(error, TelegramError::FileReferenceExpired, "{message}");
            assert_eq!(error.retry_class(), RetryClass::RefreshAndRetry);
        }
    }

    #[test]
    fn an_unregistered_key_benches_the_bot_until_a_probe_signs_it_in() {
        let error = classify(401, "AUTH_KEY_UNREGISTERED");
        assert_eq!(error, TelegramError::AuthKeyUnregistered);
        assert_eq!(error.retry_class(), RetryClass::MigrateAndRetry);
        assert!(matches!(error.penalty(), Some(Penalty::Bot { .. })));
    }

    #[test]
    fn a_revoked_token_benches_the_bot_and_a_private_channel_only_that_channel() {
        let token = classify(400, "ACCESS_TOKEN_INVALID");
        assert_eq!(token, TelegramError::AccessTokenInvalid);
        assert!(matches!(token.penalty(), Some(Penalty::Bot { .. })));
        for name in ["CHANNEL_PRIVATE", "CHANNEL_INVALID", "CHAT_ADMIN_REQUIRED"] {
            let channel = classify(400, name);
            assert_eq!(channel, TelegramError::ChannelPrivate);
            assert_eq!(channel.retry_class(), RetryClass::RetryOtherBot);
            assert!(matches!(channel.penalty(), Some(Penalty::Channel { .. })));
        }
        assert_eq!(
            classify(420, "FLOOD_WAIT_5").penalty(),
            Some(Penalty::FloodWait { secs: 5 })
        );
    }

    #[test]
    fn missing_messages_are_not_found() {
        assert_eq!(
            classify(400, "MESSAGE_ID_INVALID").retry_class(),
            RetryClass::NotFound
        );
    }

    #[test]
    fn bad_get_file_arguments_give_up() {
        for message in ["LIMIT_INVALID", "OFFSET_INVALID"] {
            let error = classify(400, message);
            assert_eq!(error, TelegramError::LimitOrOffsetInvalid);
            assert_eq!(error.retry_class(), RetryClass::GiveUp);
        }
    }

    #[test]
    fn server_side_failures_retry_elsewhere() {
        for (code, message) in [(500, "INTERDC_2_CALL_ERROR"), (-503, "Timeout")] {
            let error = classify(code, message);
            assert!(matches!(error, TelegramError::Internal(_)), "{error:?}");
            assert_eq!(error.retry_class(), RetryClass::RetryOtherBot);
        }
    }

    #[test]
    fn unknown_rpc_errors_give_up_and_keep_their_name() {
        let error = classify(400, "PEER_ID_INVALID");
        assert_eq!(error, TelegramError::Other("400 PEER_ID_INVALID".into()));
        assert_eq!(error.retry_class(), RetryClass::GiveUp);
    }

    #[test]
    fn broken_connections_retry_elsewhere() {
        let cases = [
            InvocationError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            InvocationError::Dropped("SenderPoolRunner was dropped"),
        ];
        for case in cases {
            let error = TelegramError::from(case);
            assert!(matches!(error, TelegramError::ConnectionLost(_)));
            assert_eq!(error.retry_class(), RetryClass::RetryOtherBot);
        }
        assert_eq!(
            TelegramError::Timeout.retry_class(),
            RetryClass::RetryOtherBot
        );
        assert_eq!(
            TelegramError::from(InvocationError::InvalidDc).retry_class(),
            RetryClass::GiveUp
        );
    }
}
