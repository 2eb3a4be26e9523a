//! Transactions and the commands they carry, and what each command answers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{
    AccessEntry, DhcpLease, DhcpReservation, DhcpScope, DhcpServer, DnsRecord, DnsServer, DnsZone,
    Id, Millis, ObjKey, ObjType, Object, Permission, Properties, PropertyType, RecordState,
};

/// A unit of work: commands applied all-or-nothing, attributed to a user, with a comment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The user it runs as (authenticated by the front-end).
    pub user: Id,
    /// The save comment written into the history of every change.
    pub comment: String,
    /// When set, a repeat with the same key and content answers the first result without
    /// applying again; the same key with other content is refused.
    pub idempotency_key: Option<String>,
    /// The commands, applied in order.
    pub commands: Vec<Command>,
}

impl Transaction {
    /// A transaction of one command with no comment and no idempotency key.
    pub fn one(user: Id, command: Command) -> Transaction {
        Transaction {
            user,
            comment: String::new(),
            idempotency_key: None,
            commands: vec![command],
        }
    }
}

/// A new range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NewRange {
    /// Address space (default: 1).
    pub space: Option<Id>,
    /// First address.
    pub from: Option<IpAddr>,
    /// Last address.
    pub to: Option<IpAddr>,
    /// Name; empty means the CIDR (for a prefix-aligned range) or `from-to`.
    pub name: String,
    /// Mark as a subnet (the range must be one CIDR block).
    pub subnet: bool,
    /// A container: nothing is allocated in it.
    pub is_container: bool,
    /// Locked.
    pub locked: bool,
    /// Auto-assign.
    pub auto_assign: bool,
    /// Folder.
    pub folder: Option<Id>,
    /// Custom properties.
    pub properties: Properties,
}

/// Changes to a range's fields. `None` leaves a field as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RangePatch {
    /// New name.
    pub name: Option<String>,
    /// Subnet flag.
    pub subnet: Option<bool>,
    /// Container flag.
    pub is_container: Option<bool>,
    /// Locked flag.
    pub locked: Option<bool>,
    /// Auto-assign flag.
    pub auto_assign: Option<bool>,
    /// Folder (`Some(None)` files it nowhere).
    pub folder: Option<Option<Id>>,
    /// Properties to set; an empty value removes the property.
    pub properties: Properties,
    /// Remove every property not named in `properties`.
    pub delete_unspecified: bool,
}

/// Changes to an address's record. `None` leaves a field as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RecordPatch {
    /// New state. `Held` needs `hold_seconds`.
    pub state: Option<RecordState>,
    /// For `Held`: how long, in seconds.
    pub hold_seconds: Option<u64>,
    /// Properties to set; an empty value removes the property.
    pub properties: Properties,
    /// Usage fields to set; an empty value removes the field.
    pub usage: Properties,
    /// Remove every property and usage field not named.
    pub delete_unspecified: bool,
}

/// What allocation does with the addresses it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllocMode {
    /// Mark them `Assigned`.
    Assign,
    /// Mark them `Claimed`.
    Claim,
    /// Hold them for the user for this many seconds (a temporary claim).
    Hold {
        /// Seconds until the engine frees them again.
        seconds: u64,
    },
}

/// Next free address(es) in a range or across an ordered pool of ranges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocRequest {
    /// Ranges to take from, in order (all in one address space).
    pub pool: Vec<Id>,
    /// How many addresses (1 to [`MAX_ALLOC`]). All or nothing.
    pub count: u32,
    /// Start searching here (inside one of the pool's ranges; ranges before it are skipped).
    pub start: Option<IpAddr>,
    /// Start at a random address of each range (wrapping around).
    pub random: bool,
    /// Addresses never to hand out, as inclusive pairs.
    pub exclude: Vec<(IpAddr, IpAddr)>,
    /// What to do with them.
    pub mode: AllocMode,
    /// Properties set on every allocated address.
    pub properties: Properties,
}

/// Most addresses one allocation command hands out.
pub const MAX_ALLOC: u32 = 1_000_000;

/// Size of a block to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockSpec {
    /// An aligned CIDR block of this prefix length.
    Prefix(u8),
    /// This many consecutive addresses.
    Size(u64),
}

/// Next free block(s) in a range, optionally created as child ranges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// The range to search.
    pub range: Id,
    /// Block size.
    pub size: BlockSpec,
    /// How many blocks (1 to 65,536). All or nothing.
    pub count: u32,
    /// Start searching here.
    pub start: Option<IpAddr>,
    /// Create each block as a child range with these fields (`from`, `to` and `space` are
    /// filled in; an empty name becomes the CIDR).
    pub create: Option<NewRange>,
}

/// A new property definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyDefinitionSpec {
    /// Object type it applies to.
    pub obj_type: ObjType,
    /// Name.
    pub name: String,
    /// Value type.
    pub kind: PropertyType,
    /// Mandatory.
    pub mandatory: bool,
    /// Default value.
    pub default: Option<String>,
    /// Read-only for users.
    pub read_only: bool,
}

/// A new user or changes to one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Login name.
    pub name: Option<String>,
    /// Password in clear. [`crate::Engine::submit`] hashes it (argon2id) on the caller's
    /// thread before the transaction is queued, so the write path never runs argon2; callers
    /// that must not block (async front-ends) give `password_hash` instead.
    pub password: Option<String>,
    /// The password as an argon2id PHC string (from [`crate::Engine::hash_password`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// A membership between users, groups and roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership {
    /// A role given to a user.
    UserRole {
        /// User.
        user: Id,
        /// Role.
        role: Id,
    },
    /// A user in a group.
    GroupUser {
        /// Group.
        group: Id,
        /// User.
        user: Id,
    },
    /// A role given to a group.
    GroupRole {
        /// Group.
        group: Id,
        /// Role.
        role: Id,
    },
}

/// One mutation. Every change to the model is one of these, applied by the writer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Create an address space.
    CreateAddressSpace {
        /// Unique name.
        name: String,
        /// Free text.
        description: String,
    },
    /// Rename or describe an address space.
    UpdateAddressSpace {
        /// Which.
        id: Id,
        /// New name.
        name: Option<String>,
        /// New description.
        description: Option<String>,
    },
    /// Delete an empty address space (no ranges, no records).
    DeleteAddressSpace {
        /// Which.
        id: Id,
    },
    /// Create a range; it nests under the smallest range containing it and adopts the
    /// ranges it contains.
    CreateRange(NewRange),
    /// Change a range's fields and properties.
    UpdateRange {
        /// Which.
        id: Id,
        /// What.
        patch: RangePatch,
    },
    /// Delete a range. Without `subtree` its children move up to its parent; with it they
    /// are deleted too. Address records are kept: they belong to the address space.
    DeleteRange {
        /// Which.
        id: Id,
        /// Delete every range below it too.
        subtree: bool,
    },
    /// Change one address's record (state, properties, usage). Creates it if blank.
    SetRecord {
        /// Address space.
        space: Id,
        /// Address.
        addr: IpAddr,
        /// What.
        patch: RecordPatch,
    },
    /// Free an address and drop its record's data.
    ReleaseRecord {
        /// Address space.
        space: Id,
        /// Address.
        addr: IpAddr,
    },
    /// Allocate addresses.
    AllocateAddresses(AllocRequest),
    /// Find (and optionally create) free blocks.
    AllocateBlocks(BlockRequest),
    /// Define a custom property.
    CreatePropertyDefinition(PropertyDefinitionSpec),
    /// Change a custom property definition (its object type stays).
    UpdatePropertyDefinition {
        /// Which.
        id: Id,
        /// New definition.
        spec: PropertyDefinitionSpec,
    },
    /// Remove a custom property definition and the property from every object.
    DeletePropertyDefinition {
        /// Which.
        id: Id,
    },
    /// Create a folder.
    CreateFolder {
        /// Name.
        name: String,
        /// Enclosing folder.
        parent: Option<Id>,
    },
    /// Rename or move a folder.
    UpdateFolder {
        /// Which.
        id: Id,
        /// New name.
        name: Option<String>,
        /// New parent.
        parent: Option<Option<Id>>,
    },
    /// Delete an empty folder (no sub-folders, no ranges filed in it).
    DeleteFolder {
        /// Which.
        id: Id,
    },
    /// Create a user (`name` and `password` required).
    CreateUser(UserSpec),
    /// Change a user.
    UpdateUser {
        /// Which.
        id: Id,
        /// What.
        spec: UserSpec,
    },
    /// Delete a user (and its memberships).
    DeleteUser {
        /// Which.
        id: Id,
    },
    /// Create a group.
    CreateGroup {
        /// Name.
        name: String,
        /// Free text.
        description: String,
    },
    /// Change a group.
    UpdateGroup {
        /// Which.
        id: Id,
        /// New name.
        name: Option<String>,
        /// New description.
        description: Option<String>,
    },
    /// Delete a group.
    DeleteGroup {
        /// Which.
        id: Id,
    },
    /// Create a role.
    CreateRole {
        /// Name.
        name: String,
        /// Free text.
        description: String,
        /// Permissions granted everywhere.
        permissions: BTreeSet<Permission>,
    },
    /// Change a role.
    UpdateRole {
        /// Which.
        id: Id,
        /// New name.
        name: Option<String>,
        /// New description.
        description: Option<String>,
        /// New permissions.
        permissions: Option<BTreeSet<Permission>>,
    },
    /// Delete a role (and its memberships).
    DeleteRole {
        /// Which.
        id: Id,
    },
    /// Add a membership.
    AddMembership(Membership),
    /// Remove a membership.
    RemoveMembership(Membership),
    /// Replace the access entries of an object (an empty list removes them).
    SetAccess {
        /// Object type.
        obj_type: ObjType,
        /// Object id.
        obj_id: Id,
        /// The entries.
        entries: Vec<AccessEntry>,
    },
    /// Free every held address whose hold has expired (the engine sends this itself).
    ExpireHolds,
    /// Create (id 0) or replace a DNS or DHCP object. The engine checks its references and
    /// names, fills derived fields (a record's address, a scope's address space), and
    /// marks the addresses it names as used (see `engine/DESIGN.md`, "DNS and DHCP").
    PutService(ServiceObject),
    /// Delete a DNS or DHCP object with what hangs off it (a server's zones or scopes, a
    /// zone's records, a scope's reservations and leases).
    DeleteService(ObjKey),
}

/// A DNS or DHCP object, for [`Command::PutService`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceObject {
    /// A DNS server.
    DnsServer(DnsServer),
    /// A DNS zone.
    DnsZone(DnsZone),
    /// A DNS record.
    DnsRecord(DnsRecord),
    /// A DHCP server.
    DhcpServer(DhcpServer),
    /// A DHCP scope.
    DhcpScope(DhcpScope),
    /// A DHCP reservation.
    DhcpReservation(DhcpReservation),
    /// A DHCP lease.
    DhcpLease(DhcpLease),
}

impl ServiceObject {
    /// The object, as the model keeps it.
    pub fn into_object(self) -> Object {
        match self {
            ServiceObject::DnsServer(o) => Object::DnsServer(o),
            ServiceObject::DnsZone(o) => Object::DnsZone(o),
            ServiceObject::DnsRecord(o) => Object::DnsRecord(o),
            ServiceObject::DhcpServer(o) => Object::DhcpServer(o),
            ServiceObject::DhcpScope(o) => Object::DhcpScope(o),
            ServiceObject::DhcpReservation(o) => Object::DhcpReservation(o),
            ServiceObject::DhcpLease(o) => Object::DhcpLease(o),
        }
    }
}

/// What one command answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done; nothing to report.
    Done,
    /// An object was created with this ref (`ranges/12`).
    Created(String),
    /// The addresses allocated, in the order handed out.
    Addresses(Vec<IpAddr>),
    /// The blocks found, and the ranges created for them (when asked).
    Blocks {
        /// Blocks as inclusive bounds.
        blocks: Vec<(IpAddr, IpAddr)>,
        /// Ids of the ranges created, one per block, when `create` was given.
        created: Vec<Id>,
    },
    /// Number of holds released.
    Expired(usize),
}

/// What a committed transaction answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResult {
    /// One outcome per command.
    pub outcomes: Vec<Outcome>,
    /// Sequence number of the transaction's last change (0 when it changed nothing).
    pub seq: u64,
    /// When it was committed.
    pub time: Millis,
    /// True when this is the stored answer to an earlier transaction with the same
    /// idempotency key.
    pub replayed: bool,
}
