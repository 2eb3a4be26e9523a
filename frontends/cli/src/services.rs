//! `ipamctl dns ...` and `ipamctl dhcp ...`: DNS zones and records, DHCP scopes,
//! reservations and leases, through Central (which changes the server first).
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::conn::{self, Session};
use crate::output::{self, Output};
use crate::V2;

/// DNS commands.
#[derive(Subcommand)]
pub enum DnsCmd {
    /// The DNS servers the agents report, with their state.
    Servers,
    /// Read a server's zones and records now (the server wins; every difference in history).
    Sync {
        /// Server name or ref.
        server: String,
    },
    /// List zones.
    Zones {
        /// A filter in the API's grammar (a bare term matches names).
        #[arg(long)]
        filter: Option<String>,
        /// Only this server's.
        #[arg(long)]
        server: Option<String>,
    },
    /// Create a zone on a server (then in Central).
    CreateZone {
        /// Zone name (`example.com`).
        name: String,
        /// The server (name or ref; may be left out when there is only one).
        #[arg(long)]
        server: Option<String>,
        /// Accept dynamic updates.
        #[arg(long)]
        dynamic: bool,
        /// A secondary zone of these primaries.
        #[arg(long = "master", value_name = "ADDRESS")]
        masters: Vec<String>,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
    /// Delete a zone and its records (from the server, then Central).
    DeleteZone {
        /// Zone (name, `server:view:name` or ref).
        zone: String,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
    /// List a zone's records.
    Records {
        /// Zone.
        zone: String,
        /// A filter (`type=A`, `name=www`, a bare term).
        #[arg(long)]
        filter: Option<String>,
    },
    /// Add a record (`ipamctl dns add example.com www A 10.0.0.5 --ttl 300`).
    Add {
        /// Zone.
        zone: String,
        /// Name, relative to the zone (`@` for the apex) or absolute with a final dot.
        name: String,
        /// Type (A, AAAA, CNAME, TXT, MX, ...).
        #[arg(value_name = "TYPE")]
        rtype: String,
        /// Data in zone-file form (TXT unquoted).
        data: String,
        /// Time to live in seconds.
        #[arg(long)]
        ttl: Option<u32>,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
    /// Delete a record by its ref (`dnsRecords/12`).
    Delete {
        /// Record ref.
        record: String,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
}

/// DHCP commands.
#[derive(Subcommand)]
pub enum DhcpCmd {
    /// The DHCP servers the agents report, with their state.
    Servers,
    /// Read a server's scopes, reservations and leases now (the server wins).
    Sync {
        /// Server name or ref.
        server: String,
    },
    /// List scopes.
    Scopes {
        /// A filter in the API's grammar.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Create a scope for a subnet on a server.
    CreateScope {
        /// The subnet (a range: CIDR, name or ref).
        range: String,
        /// The server (name or ref).
        #[arg(long)]
        server: String,
        /// A dynamic pool, FROM-TO (repeatable).
        #[arg(long = "pool", value_name = "FROM-TO")]
        pools: Vec<String>,
        /// An option, NAME=VALUE (`routers=192.0.2.1`, repeatable).
        #[arg(long = "option", value_name = "NAME=VALUE")]
        options: Vec<String>,
        /// Scope name (default: the range's).
        #[arg(long)]
        name: Option<String>,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
    /// Delete a scope (from the server, then Central).
    DeleteScope {
        /// Scope (CIDR, name or ref).
        scope: String,
    },
    /// List a scope's reservations.
    Reservations {
        /// Scope (CIDR, name or ref).
        scope: String,
    },
    /// Reserve an address for a client (`ipamctl dhcp reserve 192.0.2.0/24 02:00:00:00:00:42 192.0.2.42`).
    Reserve {
        /// Scope (CIDR, name or ref).
        scope: String,
        /// The client's MAC address (or client id with --client-id).
        client: String,
        /// The address.
        address: String,
        /// Host name given to the client.
        #[arg(long)]
        name: Option<String>,
        /// CLIENT is a DHCP client identifier, not a MAC address.
        #[arg(long)]
        client_id: bool,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
    /// Delete a reservation by its ref (`dhcpReservations/12`).
    Unreserve {
        /// Reservation ref.
        reservation: String,
    },
    /// A scope's leases (as last read from the server).
    Leases {
        /// Scope (CIDR, name or ref).
        scope: String,
    },
}

fn path(coll: &str, r: &str) -> String {
    let r = r.trim().trim_start_matches('/');
    let r = r.strip_prefix(&format!("{coll}/")).unwrap_or(r);
    format!("{V2}/{coll}/{}", conn::encode_path(r))
}

fn servers_table(out: Output, r: &Value, key: &str) {
    let list = r[key].as_array().cloned().unwrap_or_default();
    output::list(
        out,
        r,
        &["ref", "name", "type", "state", "agent", "message"],
        list.iter().map(|s| {
            ["ref", "name", "type", "state", "agent", "message"]
                .iter()
                .map(|k| output::text(&s[*k]))
                .collect()
        }),
    );
}

fn sync_message(out: Output, r: &Value) {
    output::message(
        out,
        r,
        &format!(
            "synchronized: {} created, {} changed, {} deleted",
            output::text(&r["created"]),
            output::text(&r["changed"]),
            output::text(&r["deleted"])
        ),
    );
}

/// Runs a `dns` command.
pub async fn dns(s: &mut Session, c: DnsCmd, out: Output) -> Result<()> {
    match c {
        DnsCmd::Servers => {
            let r = s.call("GET", &format!("{V2}/dnsServers"), None).await?;
            servers_table(out, &r, "dnsServers");
        }
        DnsCmd::Sync { server } => {
            let p = format!("{}/synchronize", path("dnsServers", &server));
            let r = s.call("POST", &p, None).await?;
            sync_message(out, &r);
        }
        DnsCmd::Zones { filter, server } => {
            let mut q = String::from("limit=100000");
            if let Some(f) = filter {
                q.push_str(&format!("&filter={}", conn::encode_query(&f)));
            }
            if let Some(sv) = server {
                q.push_str(&format!("&dnsServerRef={}", conn::encode_query(&sv)));
            }
            let r = s.call("GET", &format!("{V2}/dnsZones?{q}"), None).await?;
            let list = r["dnsZones"].as_array().cloned().unwrap_or_default();
            output::list(
                out,
                &r,
                &["ref", "name", "type", "dynamic", "server", "serial"],
                list.iter().map(|z| {
                    vec![
                        output::text(&z["ref"]),
                        output::text(&z["name"]),
                        output::text(&z["type"]),
                        output::text(&z["dynamic"]),
                        output::text(&z["authority"]),
                        output::text(&z["serial"]),
                    ]
                }),
            );
        }
        DnsCmd::CreateZone {
            name,
            server,
            dynamic,
            masters,
            comment,
        } => {
            let mut zone = json!({"name": name, "dynamic": dynamic,
                "type": if masters.is_empty() { "Master" } else { "Slave" }});
            if let Some(sv) = server {
                zone["authority"] = json!(sv.trim_start_matches("dnsServers/"));
            }
            let r = s
                .call(
                    "POST",
                    &format!("{V2}/dnsZones"),
                    Some(json!({"dnsZone": zone, "masters": masters, "saveComment": comment})),
                )
                .await?;
            output::message(out, &r, &output::text(&r["ref"]));
        }
        DnsCmd::DeleteZone { zone, comment } => {
            s.call(
                "DELETE",
                &path("dnsZones", &zone),
                Some(json!({ "saveComment": comment })),
            )
            .await?;
            output::message(out, &json!({}), "deleted");
        }
        DnsCmd::Records { zone, filter } => {
            let mut p = format!("{}/dnsRecords?limit=100000", path("dnsZones", &zone));
            if let Some(f) = filter {
                p.push_str(&format!("&filter={}", conn::encode_query(&f)));
            }
            let r = s.call("GET", &p, None).await?;
            let list = r["dnsRecords"].as_array().cloned().unwrap_or_default();
            output::list(
                out,
                &r,
                &["ref", "name", "type", "ttl", "data", "enabled"],
                list.iter().map(|x| {
                    ["ref", "name", "type", "ttl", "data", "enabled"]
                        .iter()
                        .map(|k| output::text(&x[*k]))
                        .collect()
                }),
            );
        }
        DnsCmd::Add {
            zone,
            name,
            rtype,
            data,
            ttl,
            comment,
        } => {
            let mut rec = json!({"name": name, "type": rtype, "data": data});
            if let Some(t) = ttl {
                rec["ttl"] = json!(t);
            }
            let zone_ref = zone.trim().to_string();
            let r = s
                .call(
                    "POST",
                    &format!("{V2}/dnsRecords"),
                    Some(json!({"dnsRecords": [rec], "dnsZoneRef": zone_ref, "saveComment": comment})),
                )
                .await?;
            if let Some(e) = r["errors"].as_array().and_then(|e| e.first()) {
                return Err(crate::conn::ApiFailure {
                    status: 400,
                    code: 4001,
                    message: output::text(&e["message"]),
                    index: None,
                }
                .into());
            }
            output::message(out, &r, &output::text(&r["objRefs"][0]));
        }
        DnsCmd::Delete { record, comment } => {
            s.call(
                "DELETE",
                &path("dnsRecords", &record),
                Some(json!({ "saveComment": comment })),
            )
            .await?;
            output::message(out, &json!({}), "deleted");
        }
    }
    Ok(())
}

fn pool(p: &str) -> Result<Value> {
    let (f, t) = p
        .split_once('-')
        .with_context(|| format!("pool {p:?} is not FROM-TO"))?;
    Ok(json!({"from": f.trim(), "to": t.trim()}))
}

/// Runs a `dhcp` command.
pub async fn dhcp(s: &mut Session, c: DhcpCmd, out: Output) -> Result<()> {
    match c {
        DhcpCmd::Servers => {
            let r = s.call("GET", &format!("{V2}/dhcpServers"), None).await?;
            servers_table(out, &r, "dhcpServers");
        }
        DhcpCmd::Sync { server } => {
            let p = format!("{}/synchronize", path("dhcpServers", &server));
            let r = s.call("POST", &p, None).await?;
            sync_message(out, &r);
        }
        DhcpCmd::Scopes { filter } => {
            let mut q = String::from("limit=100000");
            if let Some(f) = filter {
                q.push_str(&format!("&filter={}", conn::encode_query(&f)));
            }
            let r = s.call("GET", &format!("{V2}/dhcpScopes?{q}"), None).await?;
            let list = r["dhcpScopes"].as_array().cloned().unwrap_or_default();
            output::list(
                out,
                &r,
                &["ref", "name", "subnet", "server", "enabled", "pools"],
                list.iter().map(|x| {
                    let pools: Vec<String> = x["pools"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| format!("{}-{}", output::text(&p["from"]), output::text(&p["to"])))
                        .collect();
                    vec![
                        output::text(&x["ref"]),
                        output::text(&x["name"]),
                        output::text(&x["subnet"]),
                        output::text(&x["dhcpServerRef"]),
                        output::text(&x["enabled"]),
                        pools.join(" "),
                    ]
                }),
            );
        }
        DhcpCmd::CreateScope {
            range,
            server,
            pools,
            options,
            name,
            comment,
        } => {
            let pools: Vec<Value> = pools.iter().map(|p| pool(p)).collect::<Result<_>>()?;
            let mut opts = Vec::new();
            for o in &options {
                let (k, v) = o
                    .split_once('=')
                    .with_context(|| format!("option {o:?} is not NAME=VALUE"))?;
                opts.push(json!({"option": k.trim(), "value": v}));
            }
            let scope = json!({"rangeRef": range, "dhcpServerRef": server, "pools": pools,
                "dhcpOptions": opts, "name": name.unwrap_or_default()});
            let r = s
                .call(
                    "POST",
                    &format!("{V2}/dhcpScopes"),
                    Some(json!({"dhcpScope": scope, "saveComment": comment})),
                )
                .await?;
            output::message(out, &r, &output::text(&r["ref"]));
        }
        DhcpCmd::DeleteScope { scope } => {
            s.call("DELETE", &path("dhcpScopes", &scope), None).await?;
            output::message(out, &json!({}), "deleted");
        }
        DhcpCmd::Reservations { scope } => {
            let p = format!("{}/dhcpReservations", path("dhcpScopes", &scope));
            let r = s.call("GET", &p, None).await?;
            let list = r["dhcpReservations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            output::list(
                out,
                &r,
                &["ref", "name", "client", "addresses"],
                list.iter().map(|x| {
                    let addrs: Vec<String> = x["addresses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(output::text)
                        .collect();
                    vec![
                        output::text(&x["ref"]),
                        output::text(&x["name"]),
                        output::text(&x["clientIdentifier"]),
                        addrs.join(" "),
                    ]
                }),
            );
        }
        DhcpCmd::Reserve {
            scope,
            client,
            address,
            name,
            client_id,
            comment,
        } => {
            let method = if client_id {
                "ClientIdentifier"
            } else {
                "HardwareAddress"
            };
            let p = format!("{}/dhcpReservations", path("dhcpScopes", &scope));
            let r = s
                .call(
                    "POST",
                    &p,
                    Some(json!({"dhcpReservation": {"name": name.unwrap_or_default(),
                        "clientIdentifier": client, "addresses": [address],
                        "reservationMethod": method}, "saveComment": comment})),
                )
                .await?;
            output::message(out, &r, &output::text(&r["ref"]));
        }
        DhcpCmd::Unreserve { reservation } => {
            s.call("DELETE", &path("dhcpReservations", &reservation), None)
                .await?;
            output::message(out, &json!({}), "deleted");
        }
        DhcpCmd::Leases { scope } => {
            let p = format!("{}/leases?limit=100000", path("dhcpScopes", &scope));
            let r = s.call("GET", &p, None).await?;
            let list = r["dhcpLeases"].as_array().cloned().unwrap_or_default();
            output::list(
                out,
                &r,
                &["address", "mac", "name", "state", "expires"],
                list.iter().map(|x| {
                    vec![
                        output::text(&x["address"]),
                        output::text(&x["mac"]),
                        output::text(&x["name"]),
                        output::text(&x["state"]),
                        output::text(&x["leaseExpires"]),
                    ]
                }),
            );
        }
    }
    Ok(())
}
