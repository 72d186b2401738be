//! Time for devices that have no other clock: an SNTP responder (RFC 4330, unicast server mode).
//!
//! A device checks manifest expiry and heartbeats against the time, so the gateway answers NTP
//! client requests (mode 3) with server replies (mode 4) stamped from the system clock. The packet
//! code ([`Packet`], [`respond`]) is sans-IO: it takes bytes and timestamps and returns bytes;
//! [`SntpServer`] is the thin UDP adapter around it.
//!
//! ```
//! use fwledger_gateway::sntp::{respond, NtpTimestamp, Packet, SntpConfig, MODE_CLIENT};
//!
//! let mut request = Packet::default();
//! request.version = 4;
//! request.mode = MODE_CLIENT;
//! request.transmit = NtpTimestamp::from_unix(1_700_000_000, 0);
//! let now = NtpTimestamp::from_unix(1_700_000_001, 500_000_000);
//! let reply = respond(&request.encode(), &SntpConfig::default(), now, now)?;
//! let reply = Packet::decode(&reply)?;
//! assert_eq!(reply.originate, request.transmit);
//! assert_eq!(reply.transmit.unix_seconds(), 1_700_000_001);
//! # Ok::<(), fwledger_gateway::sntp::PacketError>(())
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;

/// Seconds from the NTP era 0 epoch (1900-01-01) to the Unix epoch.
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// Size of an NTP header without extension fields or MAC.
pub const PACKET_LEN: usize = 48;
/// Mode of a client request.
pub const MODE_CLIENT: u8 = 3;
/// Mode of a server reply.
pub const MODE_SERVER: u8 = 4;

/// An NTP timestamp: seconds since 1900 in the high 32 bits, the fraction in the low 32 bits.
/// Era numbers are implicit, as on the wire (era 1 starts in 2036).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The timestamp of a Unix time.
    pub fn from_unix(seconds: u64, nanos: u32) -> Self {
        let secs = seconds.wrapping_add(NTP_UNIX_OFFSET) & 0xffff_ffff;
        let fraction = (u64::from(nanos.min(999_999_999)) << 32) / 1_000_000_000;
        NtpTimestamp((secs << 32) | fraction)
    }

    /// The timestamp of a system time (times before 1970 map to the Unix epoch).
    pub fn from_system_time(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::from_unix(since.as_secs(), since.subsec_nanos())
    }

    /// The system clock, now.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Whole Unix seconds, assuming era 0 (1900–2036) for NTP seconds at or above the Unix epoch
    /// and era 1 below it.
    pub fn unix_seconds(self) -> u64 {
        let secs = self.0 >> 32;
        if secs >= NTP_UNIX_OFFSET {
            secs - NTP_UNIX_OFFSET
        } else {
            secs + (1 << 32) - NTP_UNIX_OFFSET
        }
    }

    /// The fraction of a second, in nanoseconds.
    pub fn subsec_nanos(self) -> u32 {
        u32::try_from(((self.0 & 0xffff_ffff) * 1_000_000_000) >> 32).unwrap_or(0)
    }
}

/// Why a datagram is not an SNTP client request this server answers. Such datagrams are dropped
/// without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than the 48-byte NTP header.
    #[error("datagram of {0} bytes is shorter than an NTP header")]
    TooShort(usize),
    /// Version number outside 1–4.
    #[error("unsupported NTP version {0}")]
    UnsupportedVersion(u8),
    /// Not a client request (mode 3): servers, broadcasts and control messages are not answered.
    #[error("NTP mode {0} is not a client request")]
    NotAClientRequest(u8),
}

/// The fields of an NTP header (RFC 4330 §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Packet {
    /// Leap indicator (0: no warning, 3: clock not synchronised).
    pub leap: u8,
    /// Version number (1–4).
    pub version: u8,
    /// Mode (3: client, 4: server).
    pub mode: u8,
    /// Stratum (0: kiss-o'-death / unspecified, 1: primary reference, 2–15: secondary).
    pub stratum: u8,
    /// Poll interval, log2 seconds.
    pub poll: i8,
    /// Precision, log2 seconds.
    pub precision: i8,
    /// Root delay, NTP short format (16.16 seconds).
    pub root_delay: u32,
    /// Root dispersion, NTP short format.
    pub root_dispersion: u32,
    /// Reference identifier (for stratum 1: four ASCII characters such as `LOCL`).
    pub reference_id: [u8; 4],
    /// When the clock was last set.
    pub reference: NtpTimestamp,
    /// The client's transmit time, copied from the request.
    pub originate: NtpTimestamp,
    /// When the request arrived at the server.
    pub receive: NtpTimestamp,
    /// When the reply left the server (for a request: when it left the client).
    pub transmit: NtpTimestamp,
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

impl Packet {
    /// Reads the 48-byte header; extension fields and a MAC after it are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        if bytes.len() < PACKET_LEN {
            return Err(PacketError::TooShort(bytes.len()));
        }
        let mut reference_id = [0u8; 4];
        reference_id.copy_from_slice(&bytes[12..16]);
        Ok(Packet {
            leap: bytes[0] >> 6,
            version: (bytes[0] >> 3) & 0x07,
            mode: bytes[0] & 0x07,
            stratum: bytes[1],
            poll: i8::from_be_bytes([bytes[2]]),
            precision: i8::from_be_bytes([bytes[3]]),
            root_delay: be32(bytes, 4),
            root_dispersion: be32(bytes, 8),
            reference_id,
            reference: NtpTimestamp(be64(bytes, 16)),
            originate: NtpTimestamp(be64(bytes, 24)),
            receive: NtpTimestamp(be64(bytes, 32)),
            transmit: NtpTimestamp(be64(bytes, 40)),
        })
    }

    /// The 48-byte header.
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut out = [0u8; PACKET_LEN];
        out[0] = ((self.leap & 0x03) << 6) | ((self.version & 0x07) << 3) | (self.mode & 0x07);
        out[1] = self.stratum;
        out[2] = self.poll.to_be_bytes()[0];
        out[3] = self.precision.to_be_bytes()[0];
        out[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        out[12..16].copy_from_slice(&self.reference_id);
        out[16..24].copy_from_slice(&self.reference.0.to_be_bytes());
        out[24..32].copy_from_slice(&self.originate.0.to_be_bytes());
        out[32..40].copy_from_slice(&self.receive.0.to_be_bytes());
        out[40..48].copy_from_slice(&self.transmit.0.to_be_bytes());
        out
    }
}

/// What the server says about its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SntpConfig {
    /// Stratum reported (1: the gateway's own clock is the reference).
    pub stratum: u8,
    /// Reference identifier (`LOCL`: the local system clock).
    pub reference_id: [u8; 4],
    /// Clock precision, log2 seconds.
    pub precision: i8,
    /// Root dispersion reported, NTP short format (16.16 seconds).
    pub root_dispersion: u32,
}

impl Default for SntpConfig {
    /// Stratum 1, reference `LOCL` (the system clock, however the host keeps it), precision
    /// about a microsecond, 10 ms root dispersion.
    fn default() -> Self {
        SntpConfig {
            stratum: 1,
            reference_id: *b"LOCL",
            precision: -20,
            root_dispersion: 655,
        }
    }
}

/// Checks that a datagram is a client request this server answers.
pub fn parse_request(bytes: &[u8]) -> Result<Packet, PacketError> {
    let packet = Packet::decode(bytes)?;
    if !(1..=4).contains(&packet.version) {
        return Err(PacketError::UnsupportedVersion(packet.version));
    }
    if packet.mode != MODE_CLIENT {
        return Err(PacketError::NotAClientRequest(packet.mode));
    }
    Ok(packet)
}

/// The reply to a client request (RFC 4330 §5): same version and poll, mode 4, originate = the
/// client's transmit timestamp, `receive` and `transmit` from the server clock.
pub fn respond(
    request: &[u8],
    config: &SntpConfig,
    receive: NtpTimestamp,
    transmit: NtpTimestamp,
) -> Result<[u8; PACKET_LEN], PacketError> {
    let request = parse_request(request)?;
    Ok(Packet {
        leap: 0,
        version: request.version,
        mode: MODE_SERVER,
        stratum: config.stratum,
        poll: request.poll,
        precision: config.precision,
        root_delay: 0,
        root_dispersion: config.root_dispersion,
        reference_id: config.reference_id,
        // The clock is its own reference: "last set" at the start of this second.
        reference: NtpTimestamp(receive.0 & !0xffff_ffff),
        originate: request.transmit,
        receive,
        transmit,
    }
    .encode())
}

/// A bound SNTP responder.
#[derive(Debug)]
pub struct SntpServer {
    socket: UdpSocket,
    config: SntpConfig,
}

impl SntpServer {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr, config: SntpConfig) -> std::io::Result<SntpServer> {
        Ok(SntpServer {
            socket: UdpSocket::bind(addr).await?,
            config,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Answers requests until `shutdown` completes. Malformed datagrams are dropped; a failing
    /// send (the client went away) is not an error of the server.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Room for extension fields and a MAC, which are ignored.
        let mut buf = [0u8; 1024];
        loop {
            let (len, peer) = tokio::select! {
                _ = &mut shutdown => return,
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok(received) => received,
                    Err(_) => {
                        // ICMP errors from earlier sends surface here on some systems.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let receive = NtpTimestamp::now();
            let Some(datagram) = buf.get(..len) else {
                continue;
            };
            if let Ok(reply) = respond(datagram, &self.config, receive, NtpTimestamp::now()) {
                let _ = self.socket.send_to(&reply, peer).await;
            }
        }
    }
}

/// Serves SNTP on `addr` with the default [`SntpConfig`] until `shutdown` completes.
pub async fn serve(addr: SocketAddr, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    SntpServer::bind(addr, SntpConfig::default())
        .await?
        .run(shutdown)
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: u8, mode: u8) -> Packet {
        Packet {
            version,
            mode,
            poll: 6,
            transmit: NtpTimestamp(0x1234_5678_9abc_def0),
            ..Packet::default()
        }
    }

    #[test]
    fn timestamps_convert_both_ways() {
        let t = NtpTimestamp::from_unix(1_700_000_000, 250_000_000);
        assert_eq!(t.0 >> 32, 1_700_000_000 + NTP_UNIX_OFFSET);
        assert_eq!(t.0 & 0xffff_ffff, 1 << 30);
        assert_eq!(t.unix_seconds(), 1_700_000_000);
        assert_eq!(t.subsec_nanos(), 250_000_000);
        // 2040 is in era 1: the seconds wrap on the wire and come back.
        let later = NtpTimestamp::from_unix(2_208_988_800, 0);
        assert_eq!(later.0 >> 32, (2 * NTP_UNIX_OFFSET) & 0xffff_ffff);
        assert_eq!(later.unix_seconds(), 2_208_988_800);
        assert_eq!(
            NtpTimestamp::from_system_time(UNIX_EPOCH).0 >> 32,
            NTP_UNIX_OFFSET
        );
    }

    #[test]
    fn packets_round_trip() {
        let packet = Packet {
            leap: 3,
            version: 4,
            mode: 4,
            stratum: 2,
            poll: -6,
            precision: -20,
            root_delay: 0x0102_0304,
            root_dispersion: 0x0506_0708,
            reference_id: *b"GPS\0",
            reference: NtpTimestamp(1),
            originate: NtpTimestamp(2),
            receive: NtpTimestamp(3),
            transmit: NtpTimestamp(u64::MAX),
        };
        let bytes = packet.encode();
        assert_eq!(bytes[0], 0b11_100_100);
        assert_eq!(Packet::decode(&bytes), Ok(packet));
    }

    #[test]
    fn a_client_request_gets_a_server_reply() {
        let config = SntpConfig::default();
        let receive = NtpTimestamp::from_unix(1_800_000_000, 1);
        let transmit = NtpTimestamp::from_unix(1_800_000_000, 2);
        for version in 1..=4 {
            let req = request(version, MODE_CLIENT);
            let reply = respond(&req.encode(), &config, receive, transmit).expect("reply");
            let reply = Packet::decode(&reply).expect("decode");
            assert_eq!(reply.version, version);
            assert_eq!(reply.mode, MODE_SERVER);
            assert_eq!(reply.leap, 0);
            assert_eq!(reply.stratum, 1);
            assert_eq!(reply.poll, 6);
            assert_eq!(&reply.reference_id, b"LOCL");
            assert_eq!(reply.originate, req.transmit);
            assert_eq!(reply.receive, receive);
            assert_eq!(reply.transmit, transmit);
            assert!(reply.reference <= reply.receive);
        }
    }

    #[test]
    fn extension_fields_after_the_header_are_ignored() {
        let mut bytes = request(4, MODE_CLIENT).encode().to_vec();
        bytes.extend_from_slice(&[0xaa; 20]);
        let now = NtpTimestamp::now();
        assert!(respond(&bytes, &SntpConfig::default(), now, now).is_ok());
    }

    #[test]
    fn malformed_and_non_client_datagrams_get_no_reply() {
        let now = NtpTimestamp::now();
        let config = SntpConfig::default();
        let full = request(4, MODE_CLIENT).encode();
        assert_eq!(
            respond(&full[..47], &config, now, now),
            Err(PacketError::TooShort(47))
        );
        assert_eq!(
            respond(&[], &config, now, now),
            Err(PacketError::TooShort(0))
        );
        for version in [0, 5, 7] {
            assert_eq!(
                respond(&request(version, MODE_CLIENT).encode(), &config, now, now),
                Err(PacketError::UnsupportedVersion(version))
            );
        }
        // A server reply sent back at us, symmetric, broadcast, control and private modes: no
        // reflection loops, no amplification.
        for mode in [0, 1, 2, 4, 5, 6, 7] {
            assert_eq!(
                respond(&request(4, mode).encode(), &config, now, now),
                Err(PacketError::NotAClientRequest(mode))
            );
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics() {
        // A small deterministic sweep in place of a fuzzer: every length up to two headers, with
        // every first byte (leap, version, mode).
        let now = NtpTimestamp::now();
        for len in 0..=2 * PACKET_LEN {
            for first in 0..=255u8 {
                let mut bytes = vec![0x5a; len];
                if let Some(b) = bytes.first_mut() {
                    *b = first;
                }
                let _ = respond(&bytes, &SntpConfig::default(), now, now);
            }
        }
    }
}
