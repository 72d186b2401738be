//! How one channel message is carried: a programmable transaction of three IOTA Notarization
//! Move calls, and how it is read back from the transaction.
//!
//! ```text
//! inputs:   message: vector<u8>, MEDIA_TYPE: Option<String>, description: Option<String>,
//!           none: Option<String>, 0x6 (Clock, shared, immutable)
//! cmd 0:    PKG::notarization::new_state_from_bytes(message, MEDIA_TYPE)          -> State
//! cmd 1:    PKG::timelock::none()                                                 -> TimeLock
//! cmd 2:    PKG::locked_notarization::create<vector<u8>>(State, description, none, TimeLock,
//!                                                       Clock)
//!           emits PKG::locked_notarization::LockedNotarizationCreated { notarization_id }
//! ```
//!
//! `description` is `fwledger/1 channel=<64 hex digits> seq=<decimal>`: it names the channel
//! and position; the message bytes are the Notarization's state data, unchanged.

use iota_sdk::types::{Argument, Command, Input, ObjectId, Transaction, TransactionKind, TypeTag};
use iota_sdk_transaction_builder::TransactionBuilder;

use fwledger_ledger::ChannelId;

/// Media type stored as the Notarization state's metadata.
pub const MEDIA_TYPE: &str = "application/vnd.fwledger.channel-message";

/// Prefix of the Notarization description of every fwledger message.
pub const DESCRIPTION_PREFIX: &str = "fwledger/1";

/// Largest message the IOTA backend carries: one pure argument is at most 16 KiB on IOTA
/// (`max_pure_argument_size`), less its length prefix.
pub const MAX_IOTA_MESSAGE: usize = 16 * 1024 - 4;

/// The Move module whose event marks a carried message.
pub const EVENT_MODULE: &str = "locked_notarization";
/// The event's struct name.
pub const EVENT_NAME: &str = "LockedNotarizationCreated";

/// The full event type filtered on (`PKG::locked_notarization::LockedNotarizationCreated`).
pub fn event_type(package: &ObjectId) -> String {
    format!("{package}::{EVENT_MODULE}::{EVENT_NAME}")
}

/// The description naming a channel position.
pub fn description(channel: &ChannelId, seq: u64) -> String {
    format!(
        "{DESCRIPTION_PREFIX} channel={} seq={seq}",
        hex::encode(channel)
    )
}

fn parse_description(text: &str) -> Option<(ChannelId, u64)> {
    let rest = text
        .strip_prefix(DESCRIPTION_PREFIX)?
        .strip_prefix(" channel=")?;
    let (channel, seq) = rest.split_once(" seq=")?;
    let channel: ChannelId = hex::decode(channel).ok()?.try_into().ok()?;
    if seq.is_empty()
        || !seq.bytes().all(|b| b.is_ascii_digit())
        || (seq.len() > 1 && seq.starts_with('0'))
    {
        return None;
    }
    Some((channel, seq.parse().ok()?))
}

/// Adds the three Move calls carrying `message` at `channel`/`seq` to a transaction builder
/// (offline or with a client).
pub fn add_message_calls<C>(
    builder: &mut TransactionBuilder<C>,
    package: ObjectId,
    channel: &ChannelId,
    seq: u64,
    message: &[u8],
) {
    let data = builder.pure(message.to_vec());
    let media = builder.pure(Some(MEDIA_TYPE.to_string()));
    let description = builder.pure(Some(description(channel, seq)));
    let none = builder.pure(Option::<String>::None);
    let clock = builder.input(Input::CLOCK_IMMUTABLE);
    let state = builder
        .move_call(package, "notarization", "new_state_from_bytes")
        .arguments((data, media))
        .result();
    let lock = builder.move_call(package, "timelock", "none").result();
    builder
        .move_call(package, EVENT_MODULE, "create")
        .type_tags([TypeTag::Vector(Box::new(TypeTag::U8))])
        .arguments((state, description, none, lock, clock));
}

/// A channel message found in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// The channel.
    pub channel: ChannelId,
    /// The position the writer asked for.
    pub seq: u64,
    /// The message bytes.
    pub message: Vec<u8>,
}

/// Reads the channel message a transaction carries, or says why it carries none.
pub fn parse_transaction(tx: &Transaction, package: &ObjectId) -> Result<Carried, String> {
    let Transaction::V1(tx) = tx else {
        return Err("unknown transaction version".into());
    };
    let TransactionKind::Programmable(ptb) = &tx.kind else {
        return Err("not a programmable transaction".into());
    };
    let pure = |arg: &Argument| -> Result<&[u8], String> {
        match arg {
            Argument::Input(i) => match ptb.inputs.get(usize::from(*i)) {
                Some(Input::Pure(bytes)) => Ok(bytes),
                _ => Err(format!("argument {arg} is not a pure input")),
            },
            _ => Err(format!("argument {arg} is not an input")),
        }
    };
    let mut state_from = None;
    let mut create = None;
    for (index, command) in ptb.commands.iter().enumerate() {
        let Command::MoveCall(call) = command else {
            continue;
        };
        if call.package != *package {
            continue;
        }
        match (call.module.as_str(), call.function.as_str()) {
            ("notarization", "new_state_from_bytes") => state_from = Some((index, call)),
            (EVENT_MODULE, "create") => create = Some(call),
            _ => {}
        }
    }
    let (state_index, state_call) =
        state_from.ok_or("no notarization::new_state_from_bytes call")?;
    let create = create.ok_or("no locked_notarization::create call")?;
    if create.arguments.first() != Some(&Argument::Result(state_index as u16)) {
        return Err("create does not notarize the new_state_from_bytes result".into());
    }
    let data = state_call
        .arguments
        .first()
        .ok_or("new_state_from_bytes has no data argument")?;
    let message: Vec<u8> =
        bcs::from_bytes(pure(data)?).map_err(|e| format!("state data is not vector<u8>: {e}"))?;
    let description = create
        .arguments
        .get(1)
        .ok_or("create has no description argument")?;
    let description: Option<String> = bcs::from_bytes(pure(description)?)
        .map_err(|e| format!("description is not Option<String>: {e}"))?;
    let description = description.ok_or("no description")?;
    let (channel, seq) = parse_description(&description)
        .ok_or_else(|| format!("description {description:?} is not an fwledger position"))?;
    Ok(Carried {
        channel,
        seq,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_round_trip_and_reject_junk() {
        let channel = [0xab; 32];
        assert_eq!(
            parse_description(&description(&channel, 42)),
            Some((channel, 42))
        );
        for bad in [
            "fwledger/1 channel=ab seq=1",
            "fwledger/2 channel=abababababababababababababababababababababababababababababababab seq=1",
            "fwledger/1 channel=abababababababababababababababababababababababababababababababab seq=01",
            "fwledger/1 channel=abababababababababababababababababababababababababababababababab seq=-1",
            "fwledger/1 channel=abababababababababababababababababababababababababababababababab seq=",
        ] {
            assert_eq!(parse_description(bad), None, "{bad}");
        }
    }
}
