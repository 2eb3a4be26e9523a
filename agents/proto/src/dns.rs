//! DNS operations and the data they carry: zones and resource records.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::validate::{
    validate_dns_name, validate_len, validate_limit, validate_opt_name, validate_record_data,
    validate_record_type, validate_ttl,
};

/// The most records one update may add plus delete.
pub const MAX_UPDATE_CHANGES: usize = 10_000;
/// The most masters of a secondary zone.
pub const MAX_MASTERS: usize = 64;

/// A DNS operation on one server, sent in [`RequestBody::Dns`](crate::RequestBody::Dns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsOp {
    /// Lists the server's zones. Answer: [`ResponseBody::Zones`](crate::ResponseBody::Zones).
    ListZones {},
    /// Reads a zone with its records, one page at a time. Answer:
    /// [`ResponseBody::Zone`](crate::ResponseBody::Zone); ask again with its `next_cursor`
    /// until that is `null`.
    ReadZone {
        /// The zone's name.
        zone: String,
        /// The view holding the zone; `null` for the default view.
        #[serde(default)]
        view: Option<String>,
        /// Where to continue: `null` for the first page, else the `next_cursor` of the previous
        /// page (opaque, made by the agent).
        #[serde(default)]
        cursor: Option<String>,
        /// The most records to return; `null` lets the agent choose. The agent keeps every
        /// answer under the frame limit whatever is asked.
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Creates a zone. Answer: [`ResponseBody::Done`](crate::ResponseBody::Done); error
    /// `already_exists` when the server has it.
    CreateZone {
        /// The zone to create.
        zone: ZoneSpec,
    },
    /// Deletes a zone and its records. Answer: [`ResponseBody::Done`](crate::ResponseBody::Done);
    /// error `not_found` when the server does not have it.
    DeleteZone {
        /// The zone's name.
        zone: String,
        /// The view holding the zone; `null` for the default view.
        #[serde(default)]
        view: Option<String>,
    },
    /// Changes records of a zone in one batch: first every delete, then every add, as one
    /// update where the server supports it (an RFC 2136 update, a PowerDNS PATCH). Answer:
    /// [`ResponseBody::RecordsUpdated`](crate::ResponseBody::RecordsUpdated).
    UpdateRecords {
        /// The zone's name.
        zone: String,
        /// The view holding the zone; `null` for the default view.
        #[serde(default)]
        view: Option<String>,
        /// Records or record sets to delete (applied first).
        #[serde(default)]
        deletes: Vec<RecordDelete>,
        /// Records to add (applied after the deletes).
        #[serde(default)]
        adds: Vec<ResourceRecord>,
    },
}

impl DnsOp {
    /// The operation's name, as on the wire (`read_zone`).
    pub fn name(&self) -> &'static str {
        match self {
            DnsOp::ListZones {} => "list_zones",
            DnsOp::ReadZone { .. } => "read_zone",
            DnsOp::CreateZone { .. } => "create_zone",
            DnsOp::DeleteZone { .. } => "delete_zone",
            DnsOp::UpdateRecords { .. } => "update_records",
        }
    }

    /// Checks every field against the protocol's rules (names, types, TTLs, list sizes).
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            DnsOp::ListZones {} => Ok(()),
            DnsOp::ReadZone {
                zone, view, limit, ..
            } => {
                validate_dns_name(zone)?;
                validate_opt_name("view", view.as_deref())?;
                validate_limit(*limit)
            }
            DnsOp::CreateZone { zone } => zone.validate(),
            DnsOp::DeleteZone { zone, view } => {
                validate_dns_name(zone)?;
                validate_opt_name("view", view.as_deref())
            }
            DnsOp::UpdateRecords {
                zone,
                view,
                deletes,
                adds,
            } => {
                validate_dns_name(zone)?;
                validate_opt_name("view", view.as_deref())?;
                validate_len(
                    "record changes of one update",
                    deletes.len().saturating_add(adds.len()),
                    MAX_UPDATE_CHANGES,
                )?;
                deletes.iter().try_for_each(RecordDelete::validate)?;
                adds.iter().try_for_each(ResourceRecord::validate)
            }
        }
    }
}

/// Whether a server is the zone's primary (holds the master copy) or a secondary (transfers
/// it from its masters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneType {
    /// The server holds the master copy.
    Primary,
    /// The server transfers the zone from its masters.
    Secondary,
}

/// A zone to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneSpec {
    /// The zone's name (`example.com`).
    pub name: String,
    /// The view to create it in; `null` for the default view.
    #[serde(default)]
    pub view: Option<String>,
    /// Primary or secondary.
    #[serde(rename = "type")]
    pub zone_type: ZoneType,
    /// Whether the zone accepts dynamic updates (RFC 2136); ignored for a secondary.
    #[serde(default)]
    pub dynamic: bool,
    /// The masters a secondary transfers from (port 53); empty for a primary.
    #[serde(default)]
    pub masters: Vec<IpAddr>,
}

impl ZoneSpec {
    /// Checks the name and view, and that a secondary has 1 to [`MAX_MASTERS`] masters and a
    /// primary none.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_dns_name(&self.name)?;
        validate_opt_name("view", self.view.as_deref())?;
        validate_len("masters", self.masters.len(), MAX_MASTERS)?;
        match (self.zone_type, self.masters.is_empty()) {
            (ZoneType::Secondary, true) => Err(ValidationError::Empty {
                field: "masters of a secondary zone",
            }),
            (ZoneType::Primary, false) => Err(ValidationError::Malformed {
                field: "masters",
                value: format!("{:?}", self.masters),
                reason: "a primary zone has no masters",
            }),
            _ => Ok(()),
        }
    }
}

/// A zone as a server holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneInfo {
    /// The zone's name.
    pub name: String,
    /// The view holding it; `null` for the default view.
    #[serde(default)]
    pub view: Option<String>,
    /// Primary or secondary.
    #[serde(rename = "type")]
    pub zone_type: ZoneType,
    /// Whether the zone accepts dynamic updates.
    #[serde(default)]
    pub dynamic: bool,
    /// A secondary's masters.
    #[serde(default)]
    pub masters: Vec<IpAddr>,
    /// The SOA serial the server serves; `null` when unknown (a secondary not yet loaded).
    #[serde(default)]
    pub serial: Option<u32>,
}

/// A resource record in presentation format, class IN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// The owner name, fully qualified; the final dot is optional (`www.example.com.` and
    /// `www.example.com` are the same name).
    pub name: String,
    /// The type mnemonic in upper case (`A`, `MX`, `TYPE65534`).
    #[serde(rename = "type")]
    pub rtype: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// The data in presentation format, as in a zone file (`10 mail.example.com.`).
    pub data: String,
}

impl ResourceRecord {
    /// Checks the name, type, TTL and data.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_dns_name(&self.name)?;
        validate_record_type(&self.rtype)?;
        validate_ttl(self.ttl)?;
        validate_record_data(&self.data)
    }
}

/// Records to delete: one record when `data` is given, else the whole record set of that name
/// and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordDelete {
    /// The owner name, fully qualified.
    pub name: String,
    /// The type mnemonic in upper case.
    #[serde(rename = "type")]
    pub rtype: String,
    /// The data of the one record to delete; `null` deletes every record of this name and type.
    #[serde(default)]
    pub data: Option<String>,
}

impl RecordDelete {
    /// Checks the name, type and data.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_dns_name(&self.name)?;
        validate_record_type(&self.rtype)?;
        self.data.as_deref().map_or(Ok(()), validate_record_data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, rtype: &str, data: &str) -> ResourceRecord {
        ResourceRecord {
            name: name.into(),
            rtype: rtype.into(),
            ttl: 3600,
            data: data.into(),
        }
    }

    #[test]
    fn update_validation_names_the_bad_field() {
        let op = DnsOp::UpdateRecords {
            zone: "example.com".into(),
            view: None,
            deletes: vec![RecordDelete {
                name: "old.example.com".into(),
                rtype: "A".into(),
                data: None,
            }],
            adds: vec![rr("www.example.com.", "A", "192.0.2.1")],
        };
        assert_eq!(op.validate(), Ok(()));
        let DnsOp::UpdateRecords {
            zone,
            view,
            deletes,
            ..
        } = op
        else {
            unreachable!()
        };
        let bad = DnsOp::UpdateRecords {
            zone,
            view,
            deletes,
            adds: vec![rr("www.example.com.", "a", "192.0.2.1")],
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("record type \"a\""), "{err}");
    }

    #[test]
    fn zone_spec_masters_follow_the_type() {
        let mut spec = ZoneSpec {
            name: "example.com".into(),
            view: None,
            zone_type: ZoneType::Secondary,
            dynamic: false,
            masters: vec![],
        };
        assert!(spec.validate().is_err());
        spec.masters.push("192.0.2.53".parse().unwrap());
        assert_eq!(spec.validate(), Ok(()));
        spec.zone_type = ZoneType::Primary;
        assert!(spec.validate().is_err());
    }
}
