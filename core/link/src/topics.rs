//! MQTT topics. `%u` in a mosquitto ACL pattern is the device id (its certificate CN).
//!
//! | topic | direction | QoS | retained | payload |
//! |---|---|---|---|---|
//! | `fwledger/v1/dev/{id}/notice` | gateway → device | 1 | yes | CBOR notice (empty clears) |
//! | `fwledger/v1/dev/{id}/status` | device → gateway | 1 | no | JSON [`DeviceStatus`](crate::DeviceStatus) |
//! | `fwledger/v1/dev/{id}/check` | device → gateway | 1 | no | empty: "send me the current notice" |

/// Prefix of every fwledger topic.
pub const PREFIX: &str = "fwledger/v1/dev";

/// Topic of notices to device `id`.
pub fn notice(id: &str) -> String {
    format!("{PREFIX}/{id}/notice")
}

/// Topic of status reports from device `id`.
pub fn status(id: &str) -> String {
    format!("{PREFIX}/{id}/status")
}

/// Topic of self-validation requests from device `id`.
pub fn check(id: &str) -> String {
    format!("{PREFIX}/{id}/check")
}

/// Subscription filter for every device's status reports (the gateway's).
pub const ALL_STATUS: &str = "fwledger/v1/dev/+/status";
/// Subscription filter for every device's check requests (the gateway's).
pub const ALL_CHECK: &str = "fwledger/v1/dev/+/check";

/// What a topic from a device is about: `(device id, kind)` for `…/{id}/status` and `…/{id}/check`.
pub fn parse(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
    let (id, kind) = rest.split_once('/')?;
    (crate::valid_device_id(id) && matches!(kind, "status" | "check" | "notice"))
        .then_some((id, kind))
}

/// The mosquitto ACL lines that confine each device to its own topics (`%u` = certificate CN).
pub fn mosquitto_acl(gateway_user: &str) -> String {
    format!(
        "# fwledger: the gateway may do everything under fwledger/v1/\n\
         user {gateway_user}\n\
         topic readwrite fwledger/v1/#\n\n\
         # every device: only its own topics (%u is the CN of its certificate)\n\
         pattern write {PREFIX}/%u/status\n\
         pattern write {PREFIX}/%u/check\n\
         pattern read {PREFIX}/%u/notice\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_topics() {
        assert_eq!(
            parse("fwledger/v1/dev/lamp-1/status"),
            Some(("lamp-1", "status"))
        );
        assert_eq!(
            parse("fwledger/v1/dev/lamp-1/check"),
            Some(("lamp-1", "check"))
        );
        assert_eq!(parse("fwledger/v1/dev/+/status"), None);
        assert_eq!(parse("fwledger/v1/dev/a/b/status"), None);
        assert_eq!(parse("other/v1/dev/a/status"), None);
    }
}
