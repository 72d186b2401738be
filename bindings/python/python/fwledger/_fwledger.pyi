"""Type stubs of the native part of fwledger (``fwledger._fwledger``); import ``fwledger``."""

import os
from datetime import timedelta
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Literal,
    Optional,
    Sequence,
    Type,
    Union,
    final,
)

__all__ = [
    "Error",
    "Follow",
    "Follower",
    "LedgerError",
    "PreparedRelease",
    "Release",
    "StoreError",
    "TokenError",
    "Vendor",
    "VendorError",
    "VerificationError",
    "__version__",
    "cid",
    "default_home",
    "fetch",
    "follow",
    "parse_token",
    "read_channel",
    "verify",
]

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_PathOrBytes = Union[str, "os.PathLike[str]", bytes]
_Key = Union[str, bytes]
_Duration = Union[int, float, timedelta, str]
_Profile = Literal["unixfs-v1-2025", "unixfs-v0-2015"]
#: A channel entry: ``kind`` is ``"release"``, ``"revoke"``, ``"heartbeat"``, ``"keyload"`` or
#: ``"rejected"`` (then ``position``, ``check`` and ``error``), as ``channel read --json``.
_ChannelEntry = Dict[str, Any]

class Error(Exception):
    """Base class of every fwledger error."""

    #: A short stable name of what failed (for verification, the check name).
    reason: Optional[str]

class VerificationError(Error):
    """A manifest, image, channel message or policy check failed; ``reason`` names the check."""

    #: For channel messages refused by ``Follower.ingest``: whether the follower moved past the
    #: message; ``None`` otherwise.
    advanced: Optional[bool]

class LedgerError(Error):
    """The ledger failed: unreachable, busy, corrupt, or an unsupported ledger URL."""

class StoreError(Error):
    """The content store failed (missing, unreachable, tampered: ``block-mismatch``, ``stalled``)."""

class TokenError(Error):
    """A subscription token is unusable; ``reason`` is the token check."""

class VendorError(Error):
    """A vendor operation was refused (``already-published``, ``not-initialized``, ...)."""

@final
class Release:
    """A published release, as ``fwledger vendor publish --json`` prints it."""

    @property
    def seq(self) -> int:
        """Channel sequence number of the release message."""
    @property
    def model(self) -> str:
        """Device model."""
    @property
    def version(self) -> str:
        """Semantic version."""
    @property
    def security_version(self) -> int:
        """Anti-rollback counter."""
    @property
    def cid(self) -> str:
        """IPFS CID of the image."""
    @property
    def sha256(self) -> str:
        """SHA-256 of the image, hex."""
    @property
    def size(self) -> int:
        """Image size in bytes."""
    @property
    def manifest_path(self) -> str:
        """Path of the signed manifest (COSE_Sign1) on disk."""
    def to_dict(self) -> Dict[str, Any]:
        """The release as a JSON-ready dict."""

@final
class PreparedRelease:
    """A release made by ``Vendor.prepare``: stored and signed, not yet on the channel."""

    @property
    def manifest_path(self) -> str:
        """Path of the signed manifest on disk."""
    @property
    def manifest(self) -> Dict[str, Any]:
        """The manifest's fields."""
    @property
    def announced(self) -> bool:
        """Whether ``Vendor.announce`` has taken it."""

@final
class Vendor:
    """A vendor: keys, the channel it writes, the gateways it admits (``HOME/vendor/``)."""

    @staticmethod
    def init(
        home: Optional[_Path], name: str, *, ledger: str = "embedded", store: str = "embedded"
    ) -> "Vendor":
        """Create a vendor in ``home`` (``None``: ``$FWLEDGER_HOME`` or ``~/.local/share/fwledger``)."""
    @staticmethod
    def open(
        home: Optional[_Path] = None, *, ledger: str = "embedded", store: str = "embedded"
    ) -> "Vendor":
        """Open the vendor in ``home``."""
    @property
    def name(self) -> str:
        """The vendor's name."""
    @property
    def public_key(self) -> str:
        """The vendor root public key, hex (``vendor_key=`` of ``verify``)."""
    @property
    def channel(self) -> str:
        """The channel id, hex."""
    @property
    def home(self) -> str:
        """The home directory."""
    @property
    def release_key_generation(self) -> int:
        """The current release-key generation."""
    def publish(
        self,
        path: _Path,
        *,
        model: str,
        hw: Union[str, Sequence[str]],
        version: str,
        security_version: int = 0,
        expires: Optional[_Duration] = None,
        prerequisite: Optional[str] = None,
        notes: Optional[str] = None,
        profile: _Profile = "unixfs-v1-2025",
        progress: Optional[Callable[[int], Any]] = None,
    ) -> Release:
        """Store, sign and announce a firmware image."""
    def prepare(
        self,
        path: _Path,
        *,
        model: str,
        hw: Union[str, Sequence[str]],
        version: str,
        security_version: int = 0,
        expires: Optional[_Duration] = None,
        prerequisite: Optional[str] = None,
        notes: Optional[str] = None,
        profile: _Profile = "unixfs-v1-2025",
        progress: Optional[Callable[[int], Any]] = None,
    ) -> PreparedRelease:
        """Store and sign a release without announcing it."""
    def announce(self, prepared: PreparedRelease) -> Release:
        """Announce a prepared release on the channel."""
    def token(self, gateway: Optional[str] = None, simple: bool = False) -> str:
        """Issue a subscription token (secret) for a gateway."""
    def revoke(
        self, version: str, model: Optional[str] = None, reason: str = "withdrawn by the vendor"
    ) -> int:
        """Withdraw a published release; returns the sequence number of the revocation."""
    def rotate_key(self, revoke: Optional[str] = None, release_key: bool = False) -> int:
        """Start a new epoch (optionally revoking a gateway); returns the keyload's sequence number."""
    def heartbeat(self, valid_seconds: _Duration) -> int:
        """Append a heartbeat valid for ``valid_seconds``; returns its sequence number."""
    def history(self) -> List[_ChannelEntry]:
        """The whole channel as the vendor reads it."""
    def gateways(self) -> List[Dict[str, Any]]:
        """Gateways admitted so far: ``name``, ``public``, ``added``, ``revoked``."""
    def close(self) -> None:
        """Close the vendor; later calls raise ``VendorError``."""
    def __enter__(self) -> "Vendor": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]: ...

@final
class Follow(Iterator[_ChannelEntry]):
    """An iterator over a followed channel (see ``follow``)."""

    def __iter__(self) -> "Follow": ...
    def __next__(self) -> _ChannelEntry: ...
    def poll(self, timeout: Optional[float] = 0.0) -> Optional[_ChannelEntry]:
        """The next entry if one arrives within ``timeout`` seconds, else ``None``."""
    @property
    def freshness(self) -> Dict[str, Any]:
        """``{"state": "unknown" | "fresh" | "stale", "valid_until": int | None}``."""
    @property
    def cursor(self) -> int:
        """The next ledger position to read."""
    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
    def close(self) -> None:
        """Stop following (from any thread)."""
    def __enter__(self) -> "Follow": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]: ...

@final
class Follower:
    """The sans-IO channel follower: feed it channel messages, it verifies each."""

    def __new__(cls, token: str, vendor_key: Optional[_Key] = None) -> "Follower": ...
    def ingest(
        self, message: bytes, now: Optional[int] = None, check_time: bool = True
    ) -> _ChannelEntry:
        """Verify the next message; raises ``VerificationError`` (``reason``, ``advanced``)."""
    @property
    def next_seq(self) -> int:
        """The sequence number of the next message expected."""
    @property
    def channel(self) -> str:
        """The channel id, hex."""

def read_channel(
    token: str,
    home: Optional[_Path] = None,
    *,
    ledger: str = "embedded",
    vendor_key: Optional[_Key] = None,
) -> List[_ChannelEntry]:
    """Read and verify every message of the channel a token opens."""

def follow(
    token: str,
    home: Optional[_Path] = None,
    state: Optional[_Path] = None,
    timeout: Optional[float] = None,
    *,
    ledger: str = "embedded",
    vendor_key: Optional[_Key] = None,
) -> Follow:
    """Follow a channel: an iterator that blocks (GIL released) for new messages."""

def parse_token(token: str, vendor_key: Optional[_Key] = None) -> Dict[str, Any]:
    """Check a subscription token and describe it; raises ``TokenError``."""

def verify(
    *,
    manifest: _PathOrBytes,
    image: _PathOrBytes,
    vendor_key: _Key,
    model: Optional[str] = None,
    hw: Optional[str] = None,
    current: Optional[str] = None,
    security_version: int = 0,
    min_key_generation: int = 0,
    now: Optional[int] = None,
    check_time: bool = True,
) -> Dict[str, Any]:
    """Verify a signed manifest and its image; raises ``VerificationError`` with ``reason``."""

def fetch(
    manifest: _PathOrBytes,
    vendor_key: _Key,
    out: _Path,
    home: Optional[_Path] = None,
    *,
    store: str = "embedded",
    stall_timeout: float = 30.0,
    min_key_generation: int = 0,
    now: Optional[int] = None,
    check_time: bool = True,
) -> Dict[str, Any]:
    """Fetch the image a manifest names into ``out``, verified while streaming."""

def cid(path: _Path, profile: _Profile = "unixfs-v1-2025") -> str:
    """The CID Kubo's ``ipfs add --only-hash -Q`` prints for the file."""

def default_home() -> str:
    """``$FWLEDGER_HOME``, else ``~/.local/share/fwledger``."""
