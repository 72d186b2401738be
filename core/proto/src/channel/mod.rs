//! Authenticated, encrypted, hash-chained channels (MAM restricted mode, done right).

pub mod author;
pub mod follower;
pub mod keyload;
pub mod message;
pub mod payload;
pub mod token;

pub use author::{AuthorError, ChainPosition, ChannelAuthor};
pub use follower::{Delivery, Event, FollowError, Follower, FollowerState, Freshness};
pub use keyload::{EpochKeys, Keyload, ReaderKey};
pub use message::{channel_id, ChannelId, Header, Kind};
pub use payload::{Heartbeat, ReleaseBody, Revocation};
pub use token::{Token, TokenError};
