//! proptest strategies for every message type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipam_agent_proto::{
    Auth, Challenge, Cidr, ClientIdentifier, DhcpOp, DhcpOption, DnsOp, EventBody, Hello, HexId,
    Lease, LeaseState, MacAddr, ManagedServer, Message, Pool, Proof, RecordDelete, RemoteError,
    RemoteErrorCode, Request, RequestBody, Reservation, ResourceRecord, Response, ResponseBody,
    Role, Scope, ServerKind, ServerStatus, Welcome, ZoneInfo, ZoneSpec, ZoneType,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

/// Any text, control characters and non-ASCII included.
pub fn text() -> BoxedStrategy<String> {
    proptest::string::string_regex("(?s).{0,12}")
        .expect("valid regex")
        .boxed()
}

fn ip() -> BoxedStrategy<IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
    .boxed()
}

fn cidr() -> BoxedStrategy<Cidr> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(bits, len)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            Cidr::new(IpAddr::V4(Ipv4Addr::from(bits & mask)), len).expect("masked")
        }),
        (any::<u128>(), 0u8..=128).prop_map(|(bits, len)| {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            Cidr::new(IpAddr::V6(Ipv6Addr::from(bits & mask)), len).expect("masked")
        }),
    ]
    .boxed()
}

fn hex_id() -> BoxedStrategy<HexId> {
    vec(any::<u8>(), 1..24)
        .prop_map(|b| HexId::new(b).expect("1 to 23 bytes"))
        .boxed()
}

fn mac() -> BoxedStrategy<MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr).boxed()
}

fn server_kind() -> BoxedStrategy<ServerKind> {
    prop_oneof![
        Just(ServerKind::Bind),
        Just(ServerKind::PowerDns),
        Just(ServerKind::Kea),
        Just(ServerKind::IscDhcpd),
    ]
    .boxed()
}

fn hello() -> BoxedStrategy<Hello> {
    (vec(any::<u16>(), 0..4), any::<[u8; 32]>())
        .prop_map(|(versions, challenge)| Hello {
            versions,
            challenge: Challenge(challenge),
        })
        .boxed()
}

fn welcome() -> BoxedStrategy<Welcome> {
    (
        any::<u16>(),
        any::<[u8; 32]>(),
        text(),
        vec(prop_oneof![Just(Role::Dns), Just(Role::Dhcp)], 0..3),
        vec(
            (text(), server_kind()).prop_map(|(name, kind)| ManagedServer { name, kind }),
            0..3,
        ),
    )
        .prop_map(|(version, p, agent_name, roles, servers)| Welcome {
            version,
            proof: Proof(p),
            agent_name,
            roles,
            servers,
        })
        .boxed()
}

fn auth() -> BoxedStrategy<Auth> {
    (any::<u16>(), text(), any::<[u8; 32]>(), any::<[u8; 32]>())
        .prop_map(|(version, central_name, proof, challenge)| Auth {
            version,
            central_name,
            proof: Proof(proof),
            challenge: Challenge(challenge),
        })
        .boxed()
}

fn zone_type() -> BoxedStrategy<ZoneType> {
    prop_oneof![Just(ZoneType::Primary), Just(ZoneType::Secondary)].boxed()
}

fn record() -> BoxedStrategy<ResourceRecord> {
    (text(), text(), any::<u32>(), text())
        .prop_map(|(name, rtype, ttl, data)| ResourceRecord {
            name,
            rtype,
            ttl,
            data,
        })
        .boxed()
}

fn zone_info() -> BoxedStrategy<ZoneInfo> {
    (
        text(),
        of(text()),
        zone_type(),
        any::<bool>(),
        vec(ip(), 0..3),
        of(any::<u32>()),
    )
        .prop_map(
            |(name, view, zone_type, dynamic, masters, serial)| ZoneInfo {
                name,
                view,
                zone_type,
                dynamic,
                masters,
                serial,
            },
        )
        .boxed()
}

fn dns_op() -> BoxedStrategy<DnsOp> {
    prop_oneof![
        Just(DnsOp::ListZones {}),
        (text(), of(text()), of(text()), of(any::<u32>())).prop_map(
            |(zone, view, cursor, limit)| DnsOp::ReadZone {
                zone,
                view,
                cursor,
                limit
            }
        ),
        (
            text(),
            of(text()),
            zone_type(),
            any::<bool>(),
            vec(ip(), 0..3)
        )
            .prop_map(
                |(name, view, zone_type, dynamic, masters)| DnsOp::CreateZone {
                    zone: ZoneSpec {
                        name,
                        view,
                        zone_type,
                        dynamic,
                        masters
                    }
                }
            ),
        (text(), of(text())).prop_map(|(zone, view)| DnsOp::DeleteZone { zone, view }),
        (
            text(),
            of(text()),
            vec(
                (text(), text(), of(text())).prop_map(|(name, rtype, data)| RecordDelete {
                    name,
                    rtype,
                    data
                }),
                0..3
            ),
            vec(record(), 0..3),
        )
            .prop_map(|(zone, view, deletes, adds)| DnsOp::UpdateRecords {
                zone,
                view,
                deletes,
                adds
            }),
    ]
    .boxed()
}

fn dhcp_option() -> BoxedStrategy<DhcpOption> {
    (of(any::<u16>()), of(text()), text())
        .prop_map(|(code, name, value)| DhcpOption { code, name, value })
        .boxed()
}

fn scope() -> BoxedStrategy<Scope> {
    (
        cidr(),
        of(text()),
        vec((ip(), ip()).prop_map(|(from, to)| Pool { from, to }), 0..3),
        vec(dhcp_option(), 0..3),
        of(any::<u32>()),
    )
        .prop_map(|(subnet, name, pools, options, lease_time)| Scope {
            subnet,
            name,
            pools,
            options,
            lease_time,
        })
        .boxed()
}

fn identifier() -> BoxedStrategy<ClientIdentifier> {
    prop_oneof![
        mac().prop_map(ClientIdentifier::Mac),
        hex_id().prop_map(ClientIdentifier::ClientId),
        hex_id().prop_map(ClientIdentifier::Duid),
    ]
    .boxed()
}

fn reservation() -> BoxedStrategy<Reservation> {
    (of(cidr()), identifier(), ip(), of(text()))
        .prop_map(|(subnet, identifier, address, hostname)| Reservation {
            subnet,
            identifier,
            address,
            hostname,
        })
        .boxed()
}

fn dhcp_op() -> BoxedStrategy<DhcpOp> {
    prop_oneof![
        Just(DhcpOp::ListScopes {}),
        scope().prop_map(|scope| DhcpOp::CreateScope { scope }),
        scope().prop_map(|scope| DhcpOp::UpdateScope { scope }),
        cidr().prop_map(|subnet| DhcpOp::DeleteScope { subnet }),
        (of(cidr()), vec(dhcp_option(), 0..3))
            .prop_map(|(subnet, options)| DhcpOp::SetOptions { subnet, options }),
        of(cidr()).prop_map(|subnet| DhcpOp::ListReservations { subnet }),
        reservation().prop_map(|reservation| DhcpOp::AddReservation { reservation }),
        (of(cidr()), identifier())
            .prop_map(|(subnet, identifier)| DhcpOp::DeleteReservation { subnet, identifier }),
        (of(cidr()), of(text()), of(any::<u32>())).prop_map(|(subnet, cursor, limit)| {
            DhcpOp::ListLeases {
                subnet,
                cursor,
                limit,
            }
        }),
    ]
    .boxed()
}

fn request() -> BoxedStrategy<Request> {
    let body = prop_oneof![
        (text(), dns_op()).prop_map(|(server, op)| RequestBody::Dns { server, op }),
        (text(), dhcp_op()).prop_map(|(server, op)| RequestBody::Dhcp { server, op }),
        text().prop_map(|server| RequestBody::ServerStatus { server }),
    ];
    (any::<u64>(), body)
        .prop_map(|(id, body)| Request { id, body })
        .boxed()
}

fn status() -> BoxedStrategy<ServerStatus> {
    (
        text(),
        server_kind(),
        any::<bool>(),
        of(text()),
        of(any::<u64>()),
        of(text()),
    )
        .prop_map(
            |(server, kind, running, version, uptime_secs, message)| ServerStatus {
                server,
                kind,
                running,
                version,
                uptime_secs,
                message,
            },
        )
        .boxed()
}

fn lease_state() -> BoxedStrategy<LeaseState> {
    prop_oneof![
        Just(LeaseState::Active),
        Just(LeaseState::Expired),
        Just(LeaseState::Released),
        Just(LeaseState::Declined),
        Just(LeaseState::Free),
    ]
    .boxed()
}

fn lease() -> BoxedStrategy<Lease> {
    (
        ip(),
        of(cidr()),
        of(mac()),
        of(hex_id()),
        of(text()),
        of(any::<u64>()),
        lease_state(),
    )
        .prop_map(
            |(address, subnet, mac, client_id, hostname, expires, state)| Lease {
                address,
                subnet,
                mac,
                client_id,
                hostname,
                expires,
                state,
            },
        )
        .boxed()
}

fn response_body() -> BoxedStrategy<ResponseBody> {
    prop_oneof![
        Just(ResponseBody::Done {}),
        vec(zone_info(), 0..3).prop_map(|zones| ResponseBody::Zones { zones }),
        (zone_info(), vec(record(), 0..3), of(text())).prop_map(|(zone, records, next_cursor)| {
            ResponseBody::Zone {
                zone,
                records,
                next_cursor,
            }
        }),
        of(any::<u32>()).prop_map(|serial| ResponseBody::RecordsUpdated { serial }),
        vec(scope(), 0..3).prop_map(|scopes| ResponseBody::Scopes { scopes }),
        vec(reservation(), 0..3)
            .prop_map(|reservations| ResponseBody::Reservations { reservations }),
        (vec(lease(), 0..3), of(text())).prop_map(|(leases, next_cursor)| ResponseBody::Leases {
            leases,
            next_cursor
        }),
        status().prop_map(|status| ResponseBody::Status { status }),
    ]
    .boxed()
}

fn remote_error() -> BoxedStrategy<RemoteError> {
    let code = prop_oneof![
        Just(RemoteErrorCode::ServerDown),
        Just(RemoteErrorCode::UnknownServer),
        Just(RemoteErrorCode::NotFound),
        Just(RemoteErrorCode::AlreadyExists),
        Just(RemoteErrorCode::Refused),
        Just(RemoteErrorCode::Invalid),
        Just(RemoteErrorCode::Unsupported),
        Just(RemoteErrorCode::Timeout),
        Just(RemoteErrorCode::Internal),
        Just(RemoteErrorCode::Unknown),
    ];
    (code, text())
        .prop_map(|(code, message)| RemoteError { code, message })
        .boxed()
}

fn event() -> BoxedStrategy<EventBody> {
    prop_oneof![
        (text(), text(), of(text()), of(any::<u32>())).prop_map(|(server, zone, view, serial)| {
            EventBody::ZoneChanged {
                server,
                zone,
                view,
                serial,
            }
        }),
        (text(), of(cidr()))
            .prop_map(|(server, subnet)| EventBody::LeasesChanged { server, subnet }),
        text().prop_map(|server| EventBody::DhcpConfigChanged { server }),
        status().prop_map(|status| EventBody::ServerStatusChanged { status }),
    ]
    .boxed()
}

/// Any message.
pub fn message() -> BoxedStrategy<Message> {
    prop_oneof![
        hello().prop_map(Message::Hello),
        auth().prop_map(Message::Auth),
        welcome().prop_map(Message::Welcome),
        text().prop_map(|reason| Message::Refused { reason }),
        request().prop_map(Message::Request),
        (
            any::<u64>(),
            prop_oneof![response_body().prop_map(Ok), remote_error().prop_map(Err)]
        )
            .prop_map(|(id, result)| Message::Response(Response { id, result })),
        any::<u64>().prop_map(|nonce| Message::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Message::Pong { nonce }),
        event().prop_map(|body| Message::Event { body }),
    ]
    .boxed()
}
