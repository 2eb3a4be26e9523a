//! The data model: every object the engine keeps, as plain values.
//!
//! Names follow Micetro's so that the API is a thin layer. Every object is stored whole: the
//! change log records whole before and after images ([`crate::Change`]), and the store's
//! object tables hold the latest image.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

mod services;

pub use services::{
    DhcpLease, DhcpReservation, DhcpScope, DhcpServer, DnsRecord, DnsServer, DnsZone,
};

/// Object identifier. Issued by the engine from one counter, never reused.
pub type Id = u64;

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// The id of the built-in system actor (hold expiry, bootstrap). It is not a user account
/// and cannot log in.
pub const SYSTEM_USER: Id = 0;

/// The id of the address space every database starts with.
pub const DEFAULT_SPACE: Id = 1;

/// The usage field set on an address record that the engine marked `Assigned` because DNS
/// or DHCP data names it.
pub const LINKED_BY: &str = "linkedBy";

/// Custom property values by name. Values are kept as strings, as the API returns them.
pub type Properties = BTreeMap<String, String>;

/// The kinds of object in the model.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub enum ObjType {
    /// An [`AddressSpace`].
    AddressSpace,
    /// A [`Range`].
    Range,
    /// An [`IpamRecord`].
    IpamRecord,
    /// A [`PropertyDefinition`].
    PropertyDefinition,
    /// A [`Folder`].
    Folder,
    /// A [`User`].
    User,
    /// A [`Group`].
    Group,
    /// A [`Role`].
    Role,
    /// An [`AccessList`].
    Access,
    /// A [`DnsServer`].
    DnsServer,
    /// A [`DnsZone`].
    DnsZone,
    /// A [`DnsRecord`].
    DnsRecord,
    /// A [`DhcpServer`].
    DhcpServer,
    /// A [`DhcpScope`].
    DhcpScope,
    /// A [`DhcpReservation`].
    DhcpReservation,
    /// A [`DhcpLease`].
    DhcpLease,
}

impl ObjType {
    /// Every type, in a fixed order.
    pub const ALL: [ObjType; 16] = [
        ObjType::AddressSpace,
        ObjType::Range,
        ObjType::IpamRecord,
        ObjType::PropertyDefinition,
        ObjType::Folder,
        ObjType::User,
        ObjType::Group,
        ObjType::Role,
        ObjType::Access,
        ObjType::DnsServer,
        ObjType::DnsZone,
        ObjType::DnsRecord,
        ObjType::DhcpServer,
        ObjType::DhcpScope,
        ObjType::DhcpReservation,
        ObjType::DhcpLease,
    ];

    /// The name used in the change log and the API (`Range`, `IPAMRecord`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ObjType::AddressSpace => "AddressSpace",
            ObjType::Range => "Range",
            ObjType::IpamRecord => "IPAMRecord",
            ObjType::PropertyDefinition => "PropertyDefinition",
            ObjType::Folder => "Folder",
            ObjType::User => "User",
            ObjType::Group => "Group",
            ObjType::Role => "Role",
            ObjType::Access => "Access",
            ObjType::DnsServer => "DNSServer",
            ObjType::DnsZone => "DNSZone",
            ObjType::DnsRecord => "DNSRecord",
            ObjType::DhcpServer => "DHCPServer",
            ObjType::DhcpScope => "DHCPScope",
            ObjType::DhcpReservation => "DHCPReservation",
            ObjType::DhcpLease => "DHCPLease",
        }
    }

    /// The API collection name (`ranges`, `ipamRecords`, ...).
    pub fn collection(self) -> &'static str {
        match self {
            ObjType::AddressSpace => "addressSpaces",
            ObjType::Range => "ranges",
            ObjType::IpamRecord => "ipamRecords",
            ObjType::PropertyDefinition => "propertyDefinitions",
            ObjType::Folder => "folders",
            ObjType::User => "users",
            ObjType::Group => "groups",
            ObjType::Role => "roles",
            ObjType::Access => "access",
            ObjType::DnsServer => "dnsServers",
            ObjType::DnsZone => "dnsZones",
            ObjType::DnsRecord => "dnsRecords",
            ObjType::DhcpServer => "dhcpServers",
            ObjType::DhcpScope => "dhcpScopes",
            ObjType::DhcpReservation => "dhcpReservations",
            ObjType::DhcpLease => "dhcpLeases",
        }
    }

    /// The type named by [`ObjType::name`].
    pub fn from_name(s: &str) -> Option<ObjType> {
        ObjType::ALL.into_iter().find(|t| t.name() == s)
    }

    fn from_collection(s: &str) -> Option<ObjType> {
        ObjType::ALL.into_iter().find(|t| t.collection() == s)
    }
}

impl fmt::Display for ObjType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names one object. Its string form ([`ObjKey::to_ref`]) is the `ref` of the API and of the
/// change log: `ranges/12`, `ipamRecords/1/10.0.0.5` (address space, address),
/// `access/Range/12`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjKey {
    /// An address space.
    AddressSpace(Id),
    /// A range.
    Range(Id),
    /// The record of one address in one address space.
    IpamRecord {
        /// Address space.
        space: Id,
        /// The address.
        addr: IpAddr,
    },
    /// A custom property definition.
    PropertyDefinition(Id),
    /// A folder.
    Folder(Id),
    /// A user.
    User(Id),
    /// A group.
    Group(Id),
    /// A role.
    Role(Id),
    /// The access entries of one object.
    Access(ObjType, Id),
    /// A DNS server.
    DnsServer(Id),
    /// A DNS zone.
    DnsZone(Id),
    /// A DNS record.
    DnsRecord(Id),
    /// A DHCP server.
    DhcpServer(Id),
    /// A DHCP scope.
    DhcpScope(Id),
    /// A DHCP reservation.
    DhcpReservation(Id),
    /// A DHCP lease.
    DhcpLease(Id),
}

impl ObjKey {
    /// The type of the object named.
    pub fn obj_type(&self) -> ObjType {
        match self {
            ObjKey::AddressSpace(_) => ObjType::AddressSpace,
            ObjKey::Range(_) => ObjType::Range,
            ObjKey::IpamRecord { .. } => ObjType::IpamRecord,
            ObjKey::PropertyDefinition(_) => ObjType::PropertyDefinition,
            ObjKey::Folder(_) => ObjType::Folder,
            ObjKey::User(_) => ObjType::User,
            ObjKey::Group(_) => ObjType::Group,
            ObjKey::Role(_) => ObjType::Role,
            ObjKey::Access(..) => ObjType::Access,
            ObjKey::DnsServer(_) => ObjType::DnsServer,
            ObjKey::DnsZone(_) => ObjType::DnsZone,
            ObjKey::DnsRecord(_) => ObjType::DnsRecord,
            ObjKey::DhcpServer(_) => ObjType::DhcpServer,
            ObjKey::DhcpScope(_) => ObjType::DhcpScope,
            ObjKey::DhcpReservation(_) => ObjType::DhcpReservation,
            ObjKey::DhcpLease(_) => ObjType::DhcpLease,
        }
    }

    /// The id of an object that has one (every type but [`ObjType::IpamRecord`]).
    pub fn id(&self) -> Option<Id> {
        match *self {
            ObjKey::AddressSpace(id)
            | ObjKey::Range(id)
            | ObjKey::PropertyDefinition(id)
            | ObjKey::Folder(id)
            | ObjKey::User(id)
            | ObjKey::Group(id)
            | ObjKey::Role(id)
            | ObjKey::Access(_, id)
            | ObjKey::DnsServer(id)
            | ObjKey::DnsZone(id)
            | ObjKey::DnsRecord(id)
            | ObjKey::DhcpServer(id)
            | ObjKey::DhcpScope(id)
            | ObjKey::DhcpReservation(id)
            | ObjKey::DhcpLease(id) => Some(id),
            ObjKey::IpamRecord { .. } => None,
        }
    }

    /// The key of the object of type `t` with id `id` (not for IPAM records or access lists).
    pub fn of(t: ObjType, id: Id) -> Option<ObjKey> {
        Some(match t {
            ObjType::AddressSpace => ObjKey::AddressSpace(id),
            ObjType::Range => ObjKey::Range(id),
            ObjType::PropertyDefinition => ObjKey::PropertyDefinition(id),
            ObjType::Folder => ObjKey::Folder(id),
            ObjType::User => ObjKey::User(id),
            ObjType::Group => ObjKey::Group(id),
            ObjType::Role => ObjKey::Role(id),
            ObjType::DnsServer => ObjKey::DnsServer(id),
            ObjType::DnsZone => ObjKey::DnsZone(id),
            ObjType::DnsRecord => ObjKey::DnsRecord(id),
            ObjType::DhcpServer => ObjKey::DhcpServer(id),
            ObjType::DhcpScope => ObjKey::DhcpScope(id),
            ObjType::DhcpReservation => ObjKey::DhcpReservation(id),
            ObjType::DhcpLease => ObjKey::DhcpLease(id),
            ObjType::IpamRecord | ObjType::Access => return None,
        })
    }

    /// A 64-bit key for indexing changes by object in a database. Equal keys give equal
    /// values (different keys may collide: compare the ref too), and consecutive IPv4
    /// addresses, or IPv6 addresses within one /96, give consecutive values, so that bulk
    /// allocation appends to such an index instead of inserting at random places.
    pub fn index_key(&self) -> i64 {
        fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h
        }
        let k = match *self {
            ObjKey::IpamRecord {
                space,
                addr: IpAddr::V4(a),
            } => (space & 0x7fff_ffff) << 32 | u64::from(u32::from(a)),
            ObjKey::IpamRecord {
                space,
                addr: IpAddr::V6(a),
            } => {
                let o = a.octets();
                let upper = fnv(space
                    .to_le_bytes()
                    .into_iter()
                    .chain(o[..12].iter().copied()));
                (upper & 0x7fff_ffff) << 32
                    | u64::from(u32::from_be_bytes([o[12], o[13], o[14], o[15]]))
            }
            ref other => fnv(other.to_ref().bytes()) & 0x7fff_ffff_ffff_ffff,
        };
        k as i64
    }

    /// The string form: `ranges/12`, `ipamRecords/1/10.0.0.5`, `access/Range/12`.
    pub fn to_ref(&self) -> String {
        match self {
            ObjKey::IpamRecord { space, addr } => format!("ipamRecords/{space}/{addr}"),
            ObjKey::Access(t, id) => format!("access/{}/{id}", t.name()),
            other => format!(
                "{}/{}",
                other.obj_type().collection(),
                other.id().unwrap_or_default()
            ),
        }
    }

    /// Parses [`ObjKey::to_ref`]'s form; `None` when it is not one.
    pub fn parse_ref(s: &str) -> Option<ObjKey> {
        let (coll, rest) = s.split_once('/')?;
        match coll {
            "ipamRecords" => {
                let (space, addr) = rest.split_once('/')?;
                Some(ObjKey::IpamRecord {
                    space: space.parse().ok()?,
                    addr: addr.parse().ok()?,
                })
            }
            "access" => {
                let (t, id) = rest.split_once('/')?;
                Some(ObjKey::Access(ObjType::from_name(t)?, id.parse().ok()?))
            }
            _ => ObjKey::of(ObjType::from_collection(coll)?, rest.parse().ok()?),
        }
    }
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ref())
    }
}

/// An isolated numbering plane (a VRF, a customer). Address space 1, `default`, always exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressSpace {
    /// Id.
    pub id: Id,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
}

/// A range of addresses `from..=to` in one address space. Its parent and children follow from
/// the nesting and are answered by the index, not stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Id.
    pub id: Id,
    /// The address space it belongs to.
    pub space: Id,
    /// First address.
    pub from: IpAddr,
    /// Last address (inclusive), same family as `from`.
    pub to: IpAddr,
    /// Name; for subnets usually the CIDR.
    pub name: String,
    /// Marked as a subnet (only for ranges that are exactly one CIDR block).
    pub subnet: bool,
    /// A container holds sub-ranges and no addresses of its own: nothing is allocated in it.
    pub is_container: bool,
    /// Locked: nothing is allocated in it and its records do not change.
    pub locked: bool,
    /// Addresses may be handed out automatically (by DHCP and "next free" defaults).
    pub auto_assign: bool,
    /// Folder it is filed in.
    pub folder: Option<Id>,
    /// Custom properties (`Title` and `Description` are built in).
    pub properties: Properties,
    /// Creation time.
    pub created: Millis,
    /// Time of the last change.
    pub last_modified: Millis,
}

/// The state of one address.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub enum RecordState {
    /// Not in use. An address without a record is free.
    #[default]
    Free,
    /// In use.
    Assigned,
    /// Claimed by a user for later use.
    Claimed,
    /// Held temporarily for a user until an expiry time, then freed by the engine.
    Held,
    /// Reserved (network infrastructure, never handed out).
    Reserved,
}

impl RecordState {
    /// Every state, in the order of their stored numbers ([`RecordState::code`]).
    pub const ALL: [RecordState; 5] = [
        RecordState::Free,
        RecordState::Assigned,
        RecordState::Claimed,
        RecordState::Held,
        RecordState::Reserved,
    ];

    /// The state's number in snapshots and database rows: Free 0, Assigned 1, Claimed 2,
    /// Held 3, Reserved 4. Stable: stored data depends on it.
    pub fn code(self) -> u8 {
        match self {
            RecordState::Free => 0,
            RecordState::Assigned => 1,
            RecordState::Claimed => 2,
            RecordState::Held => 3,
            RecordState::Reserved => 4,
        }
    }

    /// The state with this number, `None` for an unknown one.
    pub fn from_code(code: u8) -> Option<RecordState> {
        RecordState::ALL.get(usize::from(code)).copied()
    }

    /// Whether the address counts as used (every state but `Free`).
    pub fn is_used(self) -> bool {
        self != RecordState::Free
    }
}

/// Who holds a `Held` address, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// When the hold ends and the address is freed.
    pub expires: Millis,
    /// The user it is held for.
    pub user: Id,
}

/// The data of one address. Every address has one: an address without a stored record is
/// `Free` with no properties.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamRecord {
    /// Address space.
    pub space: Id,
    /// The address.
    pub addr: IpAddr,
    /// State.
    pub state: RecordState,
    /// Set exactly when `state` is `Held`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// Custom properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: Properties,
    /// Free-form usage fields (what the address is used for, by whom, where it was seen).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usage: Properties,
}

impl IpamRecord {
    /// A free record with no data.
    pub fn free(space: Id, addr: IpAddr) -> IpamRecord {
        IpamRecord {
            space,
            addr,
            state: RecordState::Free,
            hold: None,
            properties: Properties::new(),
            usage: Properties::new(),
        }
    }

    /// A record that carries nothing: free, no properties. It is not stored.
    pub fn is_blank(&self) -> bool {
        self.state == RecordState::Free && self.properties.is_empty() && self.usage.is_empty()
    }

    /// A record that carries nothing but its state (no hold, properties or usage).
    pub fn is_state_only(&self) -> bool {
        self.hold.is_none() && self.properties.is_empty() && self.usage.is_empty()
    }

    /// A record that is `Assigned` and carries nothing else. The engine keeps these as one
    /// bit in the index only.
    pub fn is_plain_assigned(&self) -> bool {
        self.state == RecordState::Assigned && self.is_state_only()
    }
}

/// The value type of a custom property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PropertyType {
    /// Any text.
    String,
    /// A decimal integer (64-bit).
    Integer,
    /// `true`/`false`/`1`/`0`, stored as `"1"` or `"0"`.
    Boolean,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// Hexadecimal digits.
    HexStr,
    /// An address or a host name.
    IpOrHostname,
}

/// A typed custom property for one type of object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyDefinition {
    /// Id.
    pub id: Id,
    /// The type of object it applies to.
    pub obj_type: ObjType,
    /// Name, unique per object type, compared without case.
    pub name: String,
    /// Value type.
    pub kind: PropertyType,
    /// Must have a value (the default fills it when given).
    pub mandatory: bool,
    /// Value given to new objects that do not set it.
    pub default: Option<String>,
    /// Users cannot change it.
    pub read_only: bool,
}

/// A folder to file ranges in; folders nest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folder {
    /// Id.
    pub id: Id,
    /// Name, unique among its siblings.
    pub name: String,
    /// Enclosing folder.
    pub parent: Option<Id>,
}

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Id.
    pub id: Id,
    /// Login name, unique, compared without case.
    pub name: String,
    /// Display name.
    pub full_name: String,
    /// E-mail address.
    pub email: String,
    /// argon2id hash in PHC string form; empty for an account that cannot log in.
    pub password_hash: String,
    /// Roles given to the user directly.
    pub roles: BTreeSet<Id>,
}

/// A group of users; its roles apply to every member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Id.
    pub id: Id,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Members.
    pub users: BTreeSet<Id>,
    /// Roles of every member.
    pub roles: BTreeSet<Id>,
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// See the object.
    Read,
    /// Change the object's fields and properties, and its addresses' records.
    Modify,
    /// Create objects (under this object, for ranges and address spaces).
    Create,
    /// Delete the object.
    Delete,
    /// Allocate addresses and blocks in the range.
    Allocate,
    /// Manage users, groups, roles, access entries, property definitions and address spaces.
    Administer,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Modify,
        Permission::Create,
        Permission::Delete,
        Permission::Allocate,
        Permission::Administer,
    ];
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A named set of permissions, granted everywhere to its members (users directly, or through
/// their groups). Per-object [`AccessList`]s refine it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Id.
    pub id: Id,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Permissions granted on every object.
    pub permissions: BTreeSet<Permission>,
    /// Members bypass access entries (the built-in Administrators role).
    pub superuser: bool,
}

/// Who an access entry is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Principal {
    /// One user.
    User(Id),
    /// The members of a group.
    Group(Id),
    /// The holders of a role.
    Role(Id),
}

/// One access entry: permissions allowed and denied to a principal on an object and on what
/// lies below it (sub-ranges, addresses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntry {
    /// Who.
    pub principal: Principal,
    /// Allowed.
    pub allow: BTreeSet<Permission>,
    /// Denied; a denial beats an allowance in the same list.
    pub deny: BTreeSet<Permission>,
}

/// The access entries of one object. The nearest list (the object, then its parents up to the
/// address space) that mentions a permission for one of the user's principals decides;
/// otherwise the user's roles do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessList {
    /// The type of the object it is attached to.
    pub obj_type: ObjType,
    /// The id of that object.
    pub obj_id: Id,
    /// The entries.
    pub entries: Vec<AccessEntry>,
}

/// Any object, as stored in the object tables and in change images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// An address space.
    AddressSpace(AddressSpace),
    /// A range.
    Range(Range),
    /// An IPAM record.
    IpamRecord(IpamRecord),
    /// A property definition.
    PropertyDefinition(PropertyDefinition),
    /// A folder.
    Folder(Folder),
    /// A user.
    User(User),
    /// A group.
    Group(Group),
    /// A role.
    Role(Role),
    /// Access entries.
    Access(AccessList),
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

impl Object {
    /// The key of this object.
    pub fn key(&self) -> ObjKey {
        match self {
            Object::AddressSpace(o) => ObjKey::AddressSpace(o.id),
            Object::Range(o) => ObjKey::Range(o.id),
            Object::IpamRecord(o) => ObjKey::IpamRecord {
                space: o.space,
                addr: o.addr,
            },
            Object::PropertyDefinition(o) => ObjKey::PropertyDefinition(o.id),
            Object::Folder(o) => ObjKey::Folder(o.id),
            Object::User(o) => ObjKey::User(o.id),
            Object::Group(o) => ObjKey::Group(o.id),
            Object::Role(o) => ObjKey::Role(o.id),
            Object::Access(o) => ObjKey::Access(o.obj_type, o.obj_id),
            Object::DnsServer(o) => ObjKey::DnsServer(o.id),
            Object::DnsZone(o) => ObjKey::DnsZone(o.id),
            Object::DnsRecord(o) => ObjKey::DnsRecord(o.id),
            Object::DhcpServer(o) => ObjKey::DhcpServer(o.id),
            Object::DhcpScope(o) => ObjKey::DhcpScope(o.id),
            Object::DhcpReservation(o) => ObjKey::DhcpReservation(o.id),
            Object::DhcpLease(o) => ObjKey::DhcpLease(o.id),
        }
    }

    /// A human name for history listings.
    pub fn display_name(&self) -> String {
        match self {
            Object::AddressSpace(o) => o.name.clone(),
            Object::Range(o) => o.name.clone(),
            Object::IpamRecord(o) => o.addr.to_string(),
            Object::PropertyDefinition(o) => o.name.clone(),
            Object::Folder(o) => o.name.clone(),
            Object::User(o) => o.name.clone(),
            Object::Group(o) => o.name.clone(),
            Object::Role(o) => o.name.clone(),
            Object::Access(o) => format!("access of {} {}", o.obj_type, o.obj_id),
            Object::DnsServer(o) => o.name.clone(),
            Object::DnsZone(o) => o.name.clone(),
            Object::DnsRecord(o) => format!("{} {} {}", o.name, o.rtype, o.data),
            Object::DhcpServer(o) => o.name.clone(),
            Object::DhcpScope(o) => o.name.clone(),
            Object::DhcpReservation(o) => o.name.clone(),
            Object::DhcpLease(o) => o.addr.to_string(),
        }
    }

    /// The object as JSON (the form the stores keep). Field names are the Rust names.
    pub fn to_json(&self) -> String {
        let r = match self {
            Object::AddressSpace(o) => serde_json::to_string(o),
            Object::Range(o) => serde_json::to_string(o),
            Object::IpamRecord(o) => serde_json::to_string(o),
            Object::PropertyDefinition(o) => serde_json::to_string(o),
            Object::Folder(o) => serde_json::to_string(o),
            Object::User(o) => serde_json::to_string(o),
            Object::Group(o) => serde_json::to_string(o),
            Object::Role(o) => serde_json::to_string(o),
            Object::Access(o) => serde_json::to_string(o),
            Object::DnsServer(o) => serde_json::to_string(o),
            Object::DnsZone(o) => serde_json::to_string(o),
            Object::DnsRecord(o) => serde_json::to_string(o),
            Object::DhcpServer(o) => serde_json::to_string(o),
            Object::DhcpScope(o) => serde_json::to_string(o),
            Object::DhcpReservation(o) => serde_json::to_string(o),
            Object::DhcpLease(o) => serde_json::to_string(o),
        };
        r.expect("model types serialize to JSON without failure")
    }

    /// Parses [`Object::to_json`]'s form for an object of type `t`.
    pub fn from_json(t: ObjType, json: &str) -> Result<Object, serde_json::Error> {
        Ok(match t {
            ObjType::AddressSpace => Object::AddressSpace(serde_json::from_str(json)?),
            ObjType::Range => Object::Range(serde_json::from_str(json)?),
            ObjType::IpamRecord => Object::IpamRecord(serde_json::from_str(json)?),
            ObjType::PropertyDefinition => Object::PropertyDefinition(serde_json::from_str(json)?),
            ObjType::Folder => Object::Folder(serde_json::from_str(json)?),
            ObjType::User => Object::User(serde_json::from_str(json)?),
            ObjType::Group => Object::Group(serde_json::from_str(json)?),
            ObjType::Role => Object::Role(serde_json::from_str(json)?),
            ObjType::Access => Object::Access(serde_json::from_str(json)?),
            ObjType::DnsServer => Object::DnsServer(serde_json::from_str(json)?),
            ObjType::DnsZone => Object::DnsZone(serde_json::from_str(json)?),
            ObjType::DnsRecord => Object::DnsRecord(serde_json::from_str(json)?),
            ObjType::DhcpServer => Object::DhcpServer(serde_json::from_str(json)?),
            ObjType::DhcpScope => Object::DhcpScope(serde_json::from_str(json)?),
            ObjType::DhcpReservation => Object::DhcpReservation(serde_json::from_str(json)?),
            ObjType::DhcpLease => Object::DhcpLease(serde_json::from_str(json)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_round_trip() {
        let keys = [
            ObjKey::Range(12),
            ObjKey::IpamRecord {
                space: 1,
                addr: "10.0.0.5".parse().unwrap(),
            },
            ObjKey::IpamRecord {
                space: 3,
                addr: "2001:db8::1".parse().unwrap(),
            },
            ObjKey::Access(ObjType::Range, 7),
            ObjKey::User(2),
        ];
        for k in keys {
            assert_eq!(ObjKey::parse_ref(&k.to_ref()), Some(k.clone()), "{k}");
        }
        assert_eq!(ObjKey::parse_ref("ranges/x"), None);
        assert_eq!(ObjKey::parse_ref("nothing/1"), None);
    }

    #[test]
    fn json_round_trip_and_unknown_fields_refused() {
        let r = Object::IpamRecord(IpamRecord {
            state: RecordState::Held,
            hold: Some(Hold {
                expires: 5,
                user: 2,
            }),
            ..IpamRecord::free(1, "10.0.0.1".parse().unwrap())
        });
        let j = r.to_json();
        assert_eq!(Object::from_json(ObjType::IpamRecord, &j).unwrap(), r);
        assert!(Object::from_json(
            ObjType::IpamRecord,
            r#"{"space":1,"addr":"10.0.0.1","state":"Free","bogus":1}"#
        )
        .is_err());
    }
}
