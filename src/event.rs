//! Typed issue events and their canonical encoding.
//!
//! An [`Event`] is one immutable fact about one issue: who ([`ActorId`]) did
//! what ([`Op`]) at which logical time (Lamport clock) having seen which
//! earlier events (causal `parents`). Events are encoded as CBOR with a fixed
//! shape (structs as maps whose keys come in declaration order, enums
//! externally tagged, byte strings as CBOR byte strings, shortest integers).
//!
//! Guarantees:
//! - equal events encode to equal bytes ([`Event::encode`] is a function);
//! - [`EventId`] is blake3 of the *stored* bytes, never of a re-encoding;
//! - [`Event::decode`] accepts only canonical bytes (decode + re-encode must
//!   reproduce the input exactly), so one event has exactly one id;
//! - decoding arbitrary bytes returns `Err`, never panics, and allocates no
//!   more than a bounded multiple of the input size.
//!
//! This module does no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The envelope version of the format-1 operations. An event is written
/// with the lowest version that has its operation ([`Op::since_version`]),
/// so events a version-1 reader understands stay readable by it and a
/// tracker revision observed by an older build is the same bytes.
pub const EVENT_FORMAT_VERSION: u32 = 1;

/// The newest envelope version this build writes.
pub const LATEST_EVENT_VERSION: u32 = 4;

/// The envelope versions this build reads: 1 (the original operations),
/// 2 (adds `sync_body`, `observe_created`, `observe_gone`, `merged_into`),
/// 3 (adds `claim` and `release`) and 4 (adds `on_behalf_of`).
pub const SUPPORTED_EVENT_VERSIONS: &[u32] = &[1, 2, 3, 4];

/// How the supported versions read in errors.
pub const SUPPORTED_EVENT_VERSIONS_TEXT: &str = "1, 2, 3, 4";

/// Longest lease a `claim` may ask for (30 days, in ms).
pub const MAX_CLAIM_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// Largest encoded event accepted by [`Event::decode`] (bytes).
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Errors from decoding events or parsing ids.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than [`MAX_EVENT_BYTES`].
    #[error("event is {len} bytes, larger than the {max} byte limit")]
    TooLarge {
        /// Size of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not CBOR of the event shape.
    #[error("malformed event encoding: {0}")]
    Malformed(String),
    /// The bytes decode, but are not the canonical encoding of what they hold.
    #[error("event encoding is not canonical (re-encoding differs at byte {offset})")]
    NotCanonical {
        /// First byte offset where input and canonical encoding differ.
        offset: usize,
    },
    /// The envelope names a version this build does not read.
    #[error("unsupported event format version {found} (supported: {supported})")]
    UnsupportedVersion {
        /// Version found in the envelope.
        found: u32,
        /// Versions this build supports.
        supported: &'static str,
    },
    /// A field holds a value outside its domain.
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// Which kind of value.
        what: &'static str,
        /// The offending value (truncated).
        value: String,
    },
    /// A text a writer was given is longer than its limit (see
    /// [`check_len`]).
    #[error("{what} is {len} bytes, over the {max}-byte limit")]
    TooLong {
        /// Which text.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

fn invalid(what: &'static str, value: &str) -> DecodeError {
    let mut value = value.to_owned();
    if value.len() > 80 {
        let mut cut = 80;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
        value.push('…');
    }
    DecodeError::Invalid { what, value }
}

/// Identity of an event: blake3 of its canonical CBOR bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub [u8; 32]);

impl EventId {
    /// Hash stored event bytes into an id.
    pub fn of_bytes(bytes: &[u8]) -> EventId {
        EventId(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        // Table lookup, not `format!` per byte: listings and `show` of
        // deep issues print one id per comment.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        s
    }

    /// The first `n` hex digits, for display.
    pub fn short(&self) -> String {
        let mut s = String::with_capacity(12);
        self.push_short(&mut s);
        s
    }

    /// [`EventId::short`] appended to `out` (no allocation of its own).
    pub fn push_short(&self, out: &mut String) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 12];
        for (i, b) in self.0[..6].iter().enumerate() {
            hex[2 * i] = DIGITS[usize::from(b >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        out.push_str(std::str::from_utf8(&hex).expect("BUG: hex digits are ASCII"));
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.short())
    }
}

impl FromStr for EventId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("event id", s));
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let pair = std::str::from_utf8(chunk).map_err(|_| invalid("event id", s))?;
            out[i] = u8::from_str_radix(pair, 16).map_err(|_| invalid("event id", s))?;
        }
        Ok(EventId(out))
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            return s.parse().map_err(serde::de::Error::custom);
        }
        let bytes = Bytes::deserialize(d)?;
        let arr: [u8; 32] = bytes
            .0
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(bytes.0.len(), &"32 bytes"))?;
        Ok(EventId(arr))
    }
}

/// An owned byte string encoded as a CBOR byte string (not an int array).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Identity of an issue (a UUID: random v4 for local issues, derived v8
/// for imported ones).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IssueId(pub uuid::Uuid);

impl IssueId {
    /// A fresh id for an issue created locally (random UUID v4, so that
    /// short prefixes tell issues apart).
    pub fn new_random() -> IssueId {
        IssueId(uuid::Uuid::new_v4())
    }

    /// A deterministic id derived from a namespace string (e.g. backend kind,
    /// instance and remote id): two replicas deriving from the same input
    /// get the same issue.
    pub fn derived(input: &str) -> IssueId {
        let hash = blake3::derive_key("reposix issue id v1", input.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&hash[..16]);
        IssueId(uuid::Builder::from_custom_bytes(b).into_uuid())
    }

    /// Whether the id was derived from a tracker identity ([`IssueId::derived`],
    /// UUID version 8) rather than made for a local `create` (version 4).
    pub fn is_derived(&self) -> bool {
        self.0.get_version_num() == 8
    }

    /// Hyphenated lower-case form, used in ref names.
    pub fn to_hyphenated(&self) -> String {
        self.0.hyphenated().to_string()
    }

    /// Short prefix for display.
    pub fn short(&self) -> String {
        let mut s = self.0.simple().to_string();
        s.truncate(8);
        s
    }
}

impl fmt::Display for IssueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

impl fmt::Debug for IssueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssueId({})", self.0.hyphenated())
    }
}

impl FromStr for IssueId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical hyphenated lower-case form: one issue, one ref name.
        let u = uuid::Uuid::try_parse(s).map_err(|_| invalid("issue id", s))?;
        if u.hyphenated().to_string() != s {
            return Err(invalid("issue id (must be lower-case hyphenated)", s));
        }
        Ok(IssueId(u))
    }
}

impl Serialize for IssueId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hyphenated())
        } else {
            s.serialize_bytes(self.0.as_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for IssueId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            return s.parse().map_err(serde::de::Error::custom);
        }
        let bytes = Bytes::deserialize(d)?;
        let arr: [u8; 16] = bytes
            .0
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(bytes.0.len(), &"16 bytes"))?;
        Ok(IssueId(uuid::Uuid::from_bytes(arr)))
    }
}

/// Who wrote an event: a person, an agent or a backend. 1 to 64 characters
/// from `[A-Za-z0-9._@+-]`, not starting with `-` or `.`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ActorId(String);

impl ActorId {
    /// Validate and wrap an actor name.
    pub fn new(name: &str) -> Result<ActorId, DecodeError> {
        if ActorId::is_valid(name) {
            Ok(ActorId(name.to_owned()))
        } else {
            Err(invalid("actor name", name))
        }
    }

    /// Whether `name` is a valid actor name (without wrapping it).
    pub fn is_valid(name: &str) -> bool {
        ActorId::is_valid_bytes(name.as_bytes())
    }

    /// [`ActorId::is_valid`] of a name's bytes (a valid name is ASCII).
    pub fn is_valid_bytes(name: &[u8]) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && !name.starts_with(b"-")
            && !name.starts_with(b".")
            && name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ActorId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ActorId::new(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorId({})", self.0)
    }
}

/// Workflow status of an issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started.
    Open,
    /// Being worked on.
    InProgress,
    /// Waiting for review.
    InReview,
    /// Finished.
    Done,
    /// Closed without doing it.
    WontFix,
}

impl Status {
    /// All statuses, in workflow order.
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::InProgress,
        Status::InReview,
        Status::Done,
        Status::WontFix,
    ];

    /// The wire name (`open`, `in_progress`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::InReview => "in_review",
            Status::Done => "done",
            Status::WontFix => "wont_fix",
        }
    }

    /// Whether the issue counts as closed.
    pub fn is_closed(self) -> bool {
        matches!(self, Status::Done | Status::WontFix)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| invalid("status (open, in_progress, in_review, done, wont_fix)", s))
    }
}

/// What an event does. Variants and fields are only ever added (with a new
/// format version), never reused: see `refs-format.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Create the issue with initial field values.
    Create {
        /// Title.
        title: String,
        /// Initial body as an automerge change on the issue's body genesis
        /// (see [`crate::crdt::body`]); `None` for an empty body.
        body: Option<Bytes>,
        /// Initial status.
        status: Status,
        /// Initial labels (sorted, unique).
        labels: Vec<String>,
        /// Initial assignees (sorted, unique).
        assignees: Vec<String>,
    },
    /// Set the title (LWW).
    SetTitle {
        /// New title.
        title: String,
    },
    /// Edit the body: one automerge change on the body document.
    EditBody {
        /// The automerge change bytes.
        change: Bytes,
    },
    /// Set the status (LWW).
    SetStatus {
        /// New status.
        status: Status,
    },
    /// Add a label (add-wins set).
    AddLabel {
        /// The label.
        label: String,
    },
    /// Remove a label: removes exactly the adds named in `observed`.
    RemoveLabel {
        /// The label.
        label: String,
        /// Ids of the add events (or creates) of this label the writer saw.
        observed: Vec<EventId>,
    },
    /// Add an assignee (add-wins set).
    AddAssignee {
        /// The assignee.
        assignee: String,
    },
    /// Remove an assignee: removes exactly the adds named in `observed`.
    RemoveAssignee {
        /// The assignee.
        assignee: String,
        /// Ids of the add events (or creates) the writer saw.
        observed: Vec<EventId>,
    },
    /// Add a comment; the comment's id is this event's id.
    AddComment {
        /// Comment text.
        body: String,
    },
    /// Replace a comment's text (LWW per comment).
    EditComment {
        /// The comment (id of its `AddComment` event).
        comment: EventId,
        /// New text.
        body: String,
    },
    /// Delete a comment (tombstone; wins over edits).
    DeleteComment {
        /// The comment (id of its `AddComment` event).
        comment: EventId,
    },
    /// Link this issue to another (add-wins set of `(kind, target)`).
    AddLink {
        /// Relation kind, e.g. `relates`, `blocks`, `duplicates`.
        kind: String,
        /// The other issue.
        target: IssueId,
    },
    /// Remove a link: removes exactly the adds named in `observed`.
    RemoveLink {
        /// Relation kind.
        kind: String,
        /// The other issue.
        target: IssueId,
        /// Ids of the add events the writer saw.
        observed: Vec<EventId>,
    },
    /// Set (or with `None`, clear) a custom scalar field (LWW per name).
    SetField {
        /// Field name.
        name: String,
        /// New value.
        value: Option<String>,
    },
    /// A tracker's state of the issue at one revision. Written with fixed
    /// envelope values (the backend's actor, lamport 0, no parents, wall
    /// time from the tracker) so every replica that observes the same
    /// revision writes the same bytes: one tracker write, one event.
    Observe {
        /// Backend instance (`<kind>::<address>`).
        backend: String,
        /// The tracker's id of the issue.
        remote_id: String,
        /// The tracker's revision order (version, or update time in ms).
        revision: u64,
        /// The tracker's concurrency token at that revision.
        token: String,
        /// Title.
        title: String,
        /// Body (marker removed).
        body: String,
        /// Status.
        status: Status,
        /// Labels (sorted, unique).
        labels: Vec<String>,
        /// Assignees (sorted, unique).
        assignees: Vec<String>,
        /// The tracker's raw update timestamp.
        updated_at: String,
    },
    /// A tracker's comment at one version (same fixed envelope as `observe`).
    ObserveComment {
        /// Backend instance.
        backend: String,
        /// The tracker's comment id.
        remote_id: String,
        /// The local comment it is, when the tracker carries our marker.
        local: Option<EventId>,
        /// Author on the tracker.
        author: String,
        /// Text (marker removed).
        body: String,
        /// Version order (update time in ms).
        revision: u64,
        /// The tracker's raw update timestamp.
        updated_at: String,
    },
    /// Binds this issue to a remote issue. `None` records the intent to
    /// create it, written before the remote create so that a crash in
    /// between is found (by marker) instead of creating a duplicate.
    Bind {
        /// Backend instance.
        backend: String,
        /// The tracker's id, once known.
        remote_id: Option<String>,
    },
    /// Binds a local comment to a remote comment (`None`: intent).
    BindComment {
        /// Backend instance.
        backend: String,
        /// The local comment.
        comment: EventId,
        /// The tracker's comment id, once known.
        remote_id: Option<String>,
    },
    /// The tracker reached `revision` of `remote_id` through a write that
    /// carried every event this event's parents reach: tracker writes at
    /// later revisions happen after those events.
    Exported {
        /// Backend instance.
        backend: String,
        /// The tracker's id (`comment:<id>` for a comment).
        remote_id: String,
        /// The revision the write produced.
        revision: u64,
    },
    /// Format 2. The tracker's body text at `revision` is accounted for in
    /// the body document: the document at `heads` (automerge change hashes)
    /// has exactly that text. `changes` are the automerge changes this
    /// event brings (the tracker's edit, computed deterministically from
    /// the previous such point; or a join of concurrent ones); empty when
    /// the text was already there (an export).
    SyncBody {
        /// Backend instance.
        backend: String,
        /// The tracker's id of the issue.
        remote_id: String,
        /// The tracker revision whose text this is.
        revision: u64,
        /// Automerge heads (32-byte change hashes, sorted) of the document
        /// state holding that text.
        heads: Vec<Bytes>,
        /// Automerge changes carried by this event.
        changes: Vec<Bytes>,
    },
    /// Format 2. When a remote object was created on the tracker (fixed
    /// envelope like `observe`, so every replica writes the same bytes).
    ObserveCreated {
        /// Backend instance.
        backend: String,
        /// The tracker's id (`comment:<id>` for a comment).
        remote_id: String,
        /// The tracker's raw creation timestamp.
        created_at: String,
    },
    /// Format 2. The remote object no longer exists on the tracker
    /// (deleted, or moved out of reach). Fixed envelope like `observe`.
    ObserveGone {
        /// Backend instance.
        backend: String,
        /// The tracker's id (`comment:<id>` for a comment).
        remote_id: String,
    },
    /// Format 2. This issue is another local copy of `target`'s tracker
    /// issue (a replica imported it without the binding, e.g. after a
    /// tracker user deleted the marker); it is folded away in favour of
    /// `target`, the issue created locally.
    MergedInto {
        /// The issue that stays.
        target: IssueId,
    },
    /// Format 3. The writer takes (or renews) a lease on the issue until
    /// `wall_ms + ttl_ms` (see [`crate::crdt::claims`] for who holds it).
    Claim {
        /// Lease length in ms (1 ..= [`MAX_CLAIM_TTL_MS`]).
        ttl_ms: u64,
        /// The event reached the remote by a compare-and-swap push before
        /// anyone was told it was held (it exists nowhere else): a
        /// linearized claim, which beats a concurrent provisional one.
        online: bool,
    },
    /// Format 3. The writer gives up its lease (and acknowledges a lost
    /// claim whose winner it has seen).
    Release {},
    /// Format 4. The writer (an agent) acts for `human` from this event on
    /// (see [`crate::crdt::attribution`]): written before an agent's first
    /// write to an issue, and again when the human it acts for changes.
    OnBehalfOf {
        /// The person the agent acts for.
        human: ActorId,
    },
}

impl Op {
    /// Short machine name of the operation (`create`, `set_title`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::SetTitle { .. } => "set_title",
            Op::EditBody { .. } => "edit_body",
            Op::SetStatus { .. } => "set_status",
            Op::AddLabel { .. } => "add_label",
            Op::RemoveLabel { .. } => "remove_label",
            Op::AddAssignee { .. } => "add_assignee",
            Op::RemoveAssignee { .. } => "remove_assignee",
            Op::AddComment { .. } => "add_comment",
            Op::EditComment { .. } => "edit_comment",
            Op::DeleteComment { .. } => "delete_comment",
            Op::AddLink { .. } => "add_link",
            Op::RemoveLink { .. } => "remove_link",
            Op::SetField { .. } => "set_field",
            Op::Observe { .. } => "observe",
            Op::ObserveComment { .. } => "observe_comment",
            Op::Bind { .. } => "bind",
            Op::BindComment { .. } => "bind_comment",
            Op::Exported { .. } => "exported",
            Op::SyncBody { .. } => "sync_body",
            Op::ObserveCreated { .. } => "observe_created",
            Op::ObserveGone { .. } => "observe_gone",
            Op::MergedInto { .. } => "merged_into",
            Op::Claim { .. } => "claim",
            Op::Release {} => "release",
            Op::OnBehalfOf { .. } => "on_behalf_of",
        }
    }

    /// The first envelope version in which this operation exists.
    pub fn since_version(&self) -> u32 {
        match self {
            Op::OnBehalfOf { .. } => 4,
            Op::Claim { .. } | Op::Release {} => 3,
            Op::SyncBody { .. }
            | Op::ObserveCreated { .. }
            | Op::ObserveGone { .. }
            | Op::MergedInto { .. } => 2,
            _ => 1,
        }
    }

    /// Whether the operation is written with the fixed envelope of tracker
    /// observations (backend actor, lamport 0, no parents).
    pub fn is_observation(&self) -> bool {
        matches!(
            self,
            Op::Observe { .. }
                | Op::ObserveComment { .. }
                | Op::ObserveCreated { .. }
                | Op::ObserveGone { .. }
        )
    }
}

/// One event: the envelope plus its operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Envelope format version ([`EVENT_FORMAT_VERSION`]).
    pub v: u32,
    /// The issue this event belongs to.
    pub issue: IssueId,
    /// Who wrote it.
    pub actor: ActorId,
    /// Lamport clock: greater than the clock of every parent.
    pub lamport: u64,
    /// Wall-clock time in milliseconds since the Unix epoch. Display only:
    /// never used to order or merge.
    pub wall_ms: i64,
    /// Causal parents: the issue's event heads the writer had seen (sorted).
    pub parents: Vec<EventId>,
    /// The operation.
    pub op: Op,
}

impl Event {
    /// Canonical bytes of this event.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("BUG: encoding into a Vec cannot fail");
        out
    }

    /// Decode canonical bytes. Checks the version before anything else and
    /// rejects any encoding that is not the one [`Event::encode`] produces.
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_EVENT_BYTES,
            });
        }
        // Version first, through a lenient view of the envelope, so a newer
        // writer's event is reported as such and not as garbage.
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u32,
        }
        match ciborium::from_reader::<VersionOnly, _>(bytes) {
            Ok(VersionOnly { v }) if !SUPPORTED_EVENT_VERSIONS.contains(&v) => {
                return Err(DecodeError::UnsupportedVersion {
                    found: v,
                    supported: SUPPORTED_EVENT_VERSIONS_TEXT,
                });
            }
            _ => {}
        }
        let event: Event =
            ciborium::from_reader(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let again = event.encode();
        if again != bytes {
            let offset = again
                .iter()
                .zip(bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(again.len().min(bytes.len()));
            return Err(DecodeError::NotCanonical { offset });
        }
        event.validate()?;
        Ok(event)
    }

    /// Check the invariants the encoder cannot express.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if !SUPPORTED_EVENT_VERSIONS.contains(&self.v) {
            return Err(DecodeError::UnsupportedVersion {
                found: self.v,
                supported: SUPPORTED_EVENT_VERSIONS_TEXT,
            });
        }
        if self.v < self.op.since_version() {
            return Err(invalid(
                "operation (newer than the event's format version)",
                self.op.kind(),
            ));
        }
        if !self.parents.windows(2).all(|w| w[0] < w[1]) {
            return Err(invalid("parents (must be sorted and unique)", ""));
        }
        let sorted_unique = |v: &[String]| v.windows(2).all(|w| w[0] < w[1]);
        let ids_sorted = |v: &[EventId]| v.windows(2).all(|w| w[0] < w[1]);
        match &self.op {
            Op::Create {
                title,
                labels,
                assignees,
                ..
            } => {
                check_text("title", title)?;
                if !sorted_unique(labels) || !sorted_unique(assignees) {
                    return Err(invalid("create (labels/assignees must be sorted)", ""));
                }
                labels.iter().try_for_each(|l| check_name("label", l))?;
                assignees
                    .iter()
                    .try_for_each(|a| check_name("assignee", a))?;
            }
            Op::SetTitle { title } => check_text("title", title)?,
            Op::AddLabel { label } => check_name("label", label)?,
            Op::RemoveLabel { label, observed } => {
                check_name("label", label)?;
                if !ids_sorted(observed) {
                    return Err(invalid("observed (must be sorted)", label));
                }
            }
            Op::AddAssignee { assignee } => check_name("assignee", assignee)?,
            Op::RemoveAssignee { assignee, observed } => {
                check_name("assignee", assignee)?;
                if !ids_sorted(observed) {
                    return Err(invalid("observed (must be sorted)", assignee));
                }
            }
            Op::AddLink { kind, .. } => check_name("link kind", kind)?,
            Op::RemoveLink { kind, observed, .. } => {
                check_name("link kind", kind)?;
                if !ids_sorted(observed) {
                    return Err(invalid("observed (must be sorted)", kind));
                }
            }
            Op::SetField { name, .. } => check_name("field name", name)?,
            Op::Observe {
                labels, assignees, ..
            } => {
                if !sorted_unique(labels) || !sorted_unique(assignees) {
                    return Err(invalid("observe (labels/assignees must be sorted)", ""));
                }
            }
            Op::SyncBody { heads, changes, .. } => {
                if !heads.windows(2).all(|w| w[0] < w[1]) || heads.iter().any(|h| h.0.len() != 32) {
                    return Err(invalid(
                        "sync_body heads (32-byte hashes, sorted, unique)",
                        "",
                    ));
                }
                if changes.iter().any(|c| c.0.is_empty()) {
                    return Err(invalid("sync_body change (empty)", ""));
                }
            }
            Op::Claim { ttl_ms, .. } => {
                if *ttl_ms == 0 || *ttl_ms > MAX_CLAIM_TTL_MS {
                    return Err(invalid(
                        "claim ttl_ms (1 ms to 30 days)",
                        &ttl_ms.to_string(),
                    ));
                }
            }
            Op::ObserveCreated { .. }
            | Op::ObserveGone { .. }
            | Op::MergedInto { .. }
            | Op::Release {}
            | Op::OnBehalfOf { .. }
            | Op::ObserveComment { .. }
            | Op::Bind { .. }
            | Op::BindComment { .. }
            | Op::Exported { .. }
            | Op::EditBody { .. }
            | Op::SetStatus { .. }
            | Op::AddComment { .. }
            | Op::EditComment { .. }
            | Op::DeleteComment { .. } => {}
        }
        Ok(())
    }

    /// Encode and hash: the bytes to store and the id they get.
    pub fn seal(&self) -> (EventId, Vec<u8>) {
        let bytes = self.encode();
        (EventId::of_bytes(&bytes), bytes)
    }
}

/// A non-empty single-line title.
fn check_text(what: &'static str, s: &str) -> Result<(), DecodeError> {
    if s.trim().is_empty() || s.contains(['\n', '\r']) {
        return Err(invalid(what, s));
    }
    Ok(())
}

/// Labels, assignees, link kinds and field names: 1..=128 bytes, no
/// whitespace or control characters.
pub fn check_name(what: &'static str, s: &str) -> Result<(), DecodeError> {
    if s.is_empty() || s.len() > 128 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(what, s));
    }
    Ok(())
}

// Writer-side limits. A reader rejects events over [`MAX_EVENT_BYTES`];
// writers refuse input that would make one (or that costs memory out of
// proportion) before writing anything, so no write can make an issue
// unreadable. The body limit also bounds the body CRDT, which holds about
// 330 bytes of memory per byte of text.

/// Largest issue body a writer accepts (UTF-8 bytes).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Largest comment a writer accepts (UTF-8 bytes).
pub const MAX_COMMENT_BYTES: usize = 1024 * 1024;

/// Largest title a writer accepts (UTF-8 bytes).
pub const MAX_TITLE_BYTES: usize = 4 * 1024;

/// Largest custom field value a writer accepts (UTF-8 bytes).
pub const MAX_FIELD_VALUE_BYTES: usize = 64 * 1024;

/// `Err(TooLong)` naming `what` and the limit if `text` is over `max` bytes.
pub fn check_len(what: &'static str, text: &str, max: usize) -> Result<(), DecodeError> {
    if text.len() > max {
        return Err(DecodeError::TooLong {
            what,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

/// `Err(TooLarge)` if an encoded event of `len` bytes is over what readers
/// accept ([`MAX_EVENT_BYTES`]): every writer checks this before storing.
pub fn check_event_size(len: usize) -> Result<(), DecodeError> {
    if len > MAX_EVENT_BYTES {
        return Err(DecodeError::TooLarge {
            len,
            max: MAX_EVENT_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            v: EVENT_FORMAT_VERSION,
            issue: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
                .parse()
                .expect("valid id"),
            actor: ActorId::new("alice").expect("valid actor"),
            lamport: 1,
            wall_ms: 1_700_000_000_000,
            parents: vec![],
            op: Op::SetTitle {
                title: "Crash on start".into(),
            },
        }
    }

    #[test]
    fn round_trip_is_identity() {
        let e = sample();
        let bytes = e.encode();
        assert_eq!(Event::decode(&bytes).expect("decodes"), e);
    }

    #[test]
    fn non_canonical_integer_is_rejected() {
        // lamport 1 re-encoded as a two-byte integer (0x18 0x01) must not decode.
        let bytes = sample().encode();
        let key = b"lamport";
        let at = bytes
            .windows(key.len())
            .position(|w| w == key)
            .expect("key present")
            + key.len();
        assert_eq!(bytes[at], 0x01);
        let mut bad = bytes[..at].to_vec();
        bad.extend_from_slice(&[0x18, 0x01]);
        bad.extend_from_slice(&bytes[at + 1..]);
        assert!(matches!(
            Event::decode(&bad),
            Err(DecodeError::NotCanonical { .. })
        ));
    }

    #[test]
    fn unknown_version_is_named() {
        let mut e = sample();
        e.v = 7;
        let err = Event::decode(&e.encode()).expect_err("v7 must not decode");
        assert_eq!(
            err.to_string(),
            "unsupported event format version 7 (supported: 1, 2, 3, 4)"
        );
    }

    #[test]
    fn actor_names_are_validated() {
        assert!(ActorId::new("agent-7@ci").is_ok());
        for bad in ["", "-x", ".x", "a b", "ü", &"a".repeat(65)] {
            assert!(ActorId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn derived_and_random_ids_are_told_apart() {
        assert!(IssueId::derived("x").is_derived());
        assert!(!IssueId::new_random().is_derived());
    }

    #[test]
    fn derived_issue_ids_are_stable() {
        let a = IssueId::derived("sim|http://127.0.0.1:7878/demo|1");
        let b = IssueId::derived("sim|http://127.0.0.1:7878/demo|1");
        let c = IssueId::derived("sim|http://127.0.0.1:7878/demo|2");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
