//! The JSON shape of messages, pinned: changing any of these breaks deployed agents and needs a
//! new protocol version.

use ipam_agent_proto::{
    decode_payload, encode, Challenge, ClientIdentifier, DhcpOp, DnsOp, EventBody, Hello, Lease,
    LeaseState, ManagedServer, Message, Proof, RecordDelete, RemoteError, RemoteErrorCode, Request,
    RequestBody, ResourceRecord, Response, ResponseBody, Role, ServerKind, Welcome, ZoneSpec,
    ZoneType,
};

fn assert_wire(message: Message, json: &str) {
    let frame = encode(&message).unwrap();
    let payload = std::str::from_utf8(&frame[4..]).unwrap();
    assert_eq!(payload, json);
    assert_eq!(decode_payload(json.as_bytes()).unwrap(), message);
}

#[test]
fn handshake_messages() {
    assert_wire(
        Message::Hello(Hello {
            versions: vec![1],
            challenge: Challenge([0x11; 32]),
        }),
        &format!(
            r#"{{"hello":{{"versions":[1],"challenge":"{}"}}}}"#,
            "11".repeat(32)
        ),
    );
    assert_wire(
        Message::Auth(ipam_agent_proto::Auth {
            version: 1,
            central_name: "c".into(),
            proof: Proof([0; 32]),
            challenge: ipam_agent_proto::Challenge([0x22; 32]),
        }),
        &format!(
            r#"{{"auth":{{"version":1,"central_name":"c","proof":"{}","challenge":"{}"}}}}"#,
            "0".repeat(64),
            "22".repeat(32)
        ),
    );
    assert_wire(
        Message::Welcome(Welcome {
            version: 1,
            proof: Proof([0x33; 32]),
            agent_name: "a1".into(),
            roles: vec![Role::Dns, Role::Dhcp],
            servers: vec![
                ManagedServer {
                    name: "ns1".into(),
                    kind: ServerKind::PowerDns,
                },
                ManagedServer {
                    name: "dhcp1".into(),
                    kind: ServerKind::IscDhcpd,
                },
            ],
        }),
        &format!(
            r#"{{"welcome":{{"version":1,"proof":"{}","agent_name":"a1","roles":["dns","dhcp"],"servers":[{{"name":"ns1","kind":"powerdns"}},{{"name":"dhcp1","kind":"isc_dhcpd"}}]}}}}"#,
            "33".repeat(32)
        ),
    );
    assert_wire(
        Message::Refused {
            reason: "bad proof".into(),
        },
        r#"{"refused":{"reason":"bad proof"}}"#,
    );
    assert_wire(
        Message::Ping { nonce: u64::MAX },
        r#"{"ping":{"nonce":18446744073709551615}}"#,
    );
    assert_wire(Message::Pong { nonce: 0 }, r#"{"pong":{"nonce":0}}"#);
}

#[test]
fn frame_prefix_is_little_endian_payload_length() {
    let frame = encode(&Message::Ping { nonce: 7 }).unwrap();
    assert_eq!(&frame[..4], &[20, 0, 0, 0]);
    assert_eq!(&frame[4..], br#"{"ping":{"nonce":7}}"#);
}

#[test]
fn dns_requests() {
    assert_wire(
        Message::Request(Request {
            id: 1,
            body: RequestBody::Dns {
                server: "ns1".into(),
                op: DnsOp::ListZones {},
            },
        }),
        r#"{"request":{"id":1,"body":{"dns":{"server":"ns1","op":{"list_zones":{}}}}}}"#,
    );
    assert_wire(
        Message::Request(Request {
            id: 2,
            body: RequestBody::Dns {
                server: "ns1".into(),
                op: DnsOp::CreateZone {
                    zone: ZoneSpec {
                        name: "example.com".into(),
                        view: None,
                        zone_type: ZoneType::Secondary,
                        dynamic: false,
                        masters: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
                    },
                },
            },
        }),
        r#"{"request":{"id":2,"body":{"dns":{"server":"ns1","op":{"create_zone":{"zone":{"name":"example.com","view":null,"type":"secondary","dynamic":false,"masters":["192.0.2.1","2001:db8::1"]}}}}}}}"#,
    );
    assert_wire(
        Message::Request(Request {
            id: 3,
            body: RequestBody::Dns {
                server: "ns1".into(),
                op: DnsOp::UpdateRecords {
                    zone: "example.com".into(),
                    view: Some("internal".into()),
                    deletes: vec![RecordDelete {
                        name: "old.example.com.".into(),
                        rtype: "A".into(),
                        data: None,
                    }],
                    adds: vec![ResourceRecord {
                        name: "example.com.".into(),
                        rtype: "MX".into(),
                        ttl: 3600,
                        data: "10 mail.example.com.".into(),
                    }],
                },
            },
        }),
        r#"{"request":{"id":3,"body":{"dns":{"server":"ns1","op":{"update_records":{"zone":"example.com","view":"internal","deletes":[{"name":"old.example.com.","type":"A","data":null}],"adds":[{"name":"example.com.","type":"MX","ttl":3600,"data":"10 mail.example.com."}]}}}}}}"#,
    );
    // Optional fields and lists may be left out.
    assert_eq!(
        decode_payload(
            br#"{"request":{"id":4,"body":{"dns":{"server":"ns1","op":{"read_zone":{"zone":"example.com"}}}}}}"#
        )
        .unwrap(),
        Message::Request(Request {
            id: 4,
            body: RequestBody::Dns {
                server: "ns1".into(),
                op: DnsOp::ReadZone {
                    zone: "example.com".into(),
                    view: None,
                    cursor: None,
                    limit: None,
                },
            },
        })
    );
}

#[test]
fn dhcp_requests_and_responses() {
    assert_wire(
        Message::Request(Request {
            id: 5,
            body: RequestBody::Dhcp {
                server: "kea1".into(),
                op: DhcpOp::DeleteReservation {
                    subnet: Some("192.0.2.0/24".parse().unwrap()),
                    identifier: ClientIdentifier::Mac("00:16:3e:00:00:01".parse().unwrap()),
                },
            },
        }),
        r#"{"request":{"id":5,"body":{"dhcp":{"server":"kea1","op":{"delete_reservation":{"subnet":"192.0.2.0/24","identifier":{"mac":"00:16:3e:00:00:01"}}}}}}}"#,
    );
    assert_wire(
        Message::Response(Response {
            id: 6,
            result: Ok(ResponseBody::Leases {
                leases: vec![Lease {
                    address: "192.0.2.10".parse().unwrap(),
                    subnet: None,
                    mac: Some("00:16:3e:00:00:01".parse().unwrap()),
                    client_id: Some("01:00:16:3e:00:00:01".parse().unwrap()),
                    hostname: Some("printer".into()),
                    expires: Some(1_750_000_000),
                    state: LeaseState::Active,
                }],
                next_cursor: None,
            }),
        }),
        r#"{"response":{"id":6,"result":{"ok":{"leases":{"leases":[{"address":"192.0.2.10","subnet":null,"mac":"00:16:3e:00:00:01","client_id":"01:00:16:3e:00:00:01","hostname":"printer","expires":1750000000,"state":"active"}],"next_cursor":null}}}}}"#,
    );
}

#[test]
fn errors_and_events() {
    assert_wire(
        Message::Response(Response {
            id: 7,
            result: Err(RemoteError::new(
                RemoteErrorCode::ServerDown,
                "rndc: connection refused",
            )),
        }),
        r#"{"response":{"id":7,"result":{"error":{"code":"server_down","message":"rndc: connection refused"}}}}"#,
    );
    assert_wire(
        Message::Response(Response {
            id: 8,
            result: Ok(ResponseBody::Done {}),
        }),
        r#"{"response":{"id":8,"result":{"ok":{"done":{}}}}}"#,
    );
    // A code from a newer peer decodes as `unknown` instead of failing the connection.
    let newer =
        br#"{"response":{"id":9,"result":{"error":{"code":"quota_exceeded","message":"m"}}}}"#;
    let Message::Response(Response {
        result: Err(err), ..
    }) = decode_payload(newer).unwrap()
    else {
        panic!("not an error response")
    };
    assert_eq!(err.code, RemoteErrorCode::Unknown);
    assert_eq!(err.to_string(), "m (unknown)");

    assert_wire(
        Message::Event {
            body: EventBody::ZoneChanged {
                server: "ns1".into(),
                zone: "example.com".into(),
                view: None,
                serial: Some(2025010101),
            },
        },
        r#"{"event":{"body":{"zone_changed":{"server":"ns1","zone":"example.com","view":null,"serial":2025010101}}}}"#,
    );
}

#[test]
fn request_validation_maps_to_an_invalid_error() {
    let request = Request {
        id: 1,
        body: RequestBody::Dns {
            server: "ns1".into(),
            op: DnsOp::DeleteZone {
                zone: "bad zone".into(),
                view: None,
            },
        },
    };
    let err: RemoteError = request.validate().unwrap_err().into();
    assert_eq!(err.code, RemoteErrorCode::Invalid);
    assert!(err.message.contains("\"bad zone\""), "{err}");
    let empty_server = Request {
        id: 1,
        body: RequestBody::ServerStatus {
            server: String::new(),
        },
    };
    assert_eq!(
        empty_server.validate().unwrap_err().to_string(),
        "server is empty"
    );
}
