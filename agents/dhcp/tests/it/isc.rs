//! The ISC dhcpd driver against a real dhcpd in a network namespace: lease file parsing after a
//! real client got a lease, OMAPI host create/delete cross-checked with omshell and real
//! clients, wrong keys, a stopped server.

use std::io::Read;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ipam_agent_dhcp::{DhcpError, DhcpServer, IscDhcpdConfig, IscDhcpdServer, OmapiKey};
use ipam_agent_proto::{ClientIdentifier, LeaseState, Reservation, Scope};

use crate::harness::{
    free_port, require, run_with_timeout, udhcpc, wait_for, NetnsPair, Proc, TempDir, Tools,
};

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reading /dev/urandom");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// dhcpd in the server namespace of a fresh pair, with OMAPI reachable from this (root)
/// namespace through a socat forwarder on 127.0.0.1, since dhcpd's OMAPI listens inside the
/// namespace only.
///
/// Fields drop in order: the processes stop before the namespaces and the temp dir go.
struct Dhcpd {
    dhcpd: Option<Proc>,
    _forwarder: Proc,
    pair: NetnsPair,
    dir: TempDir,
    secret: String,
    omapi_port: u16,
}

impl Dhcpd {
    fn start(tools: &Tools) -> Dhcpd {
        let pair = NetnsPair::new(tools);
        let dir = TempDir::new();
        let secret = random_secret();
        std::fs::write(
            dir.join("dhcpd.conf"),
            format!(
                r#"authoritative;
default-lease-time 600; max-lease-time 3600;
ddns-update-style none;
ping-check false;
omapi-port 7911;
key omapi_key {{ algorithm hmac-sha256; secret "{secret}"; }};
omapi-key omapi_key;
subnet 192.0.2.0 netmask 255.255.255.0 {{
  range 192.0.2.100 192.0.2.199;
  option routers 192.0.2.1;
  option domain-name-servers 192.0.2.1;
}}
host fixed42 {{ hardware ethernet 02:00:00:00:00:42; fixed-address 192.0.2.42; }}
"#
            ),
        )
        .unwrap();
        std::fs::write(dir.join("dhcpd.leases"), "").unwrap();
        let started = Instant::now();
        let mut cmd = pair.in_srv(tools.path("dhcpd"));
        cmd.args(["-f", "-d", "-4", "-cf"])
            .arg(dir.join("dhcpd.conf"))
            .arg("-lf")
            .arg(dir.join("dhcpd.leases"))
            .arg("-pf")
            .arg(dir.join("dhcpd.pid"))
            .arg(&pair.srv_if);
        let dhcpd = Proc::spawn("dhcpd", &mut cmd, &dir.join("dhcpd.log"));

        let omapi_port = free_port();
        let inner = format!(
            "{} netns exec {} {} STDIO TCP4:127.0.0.1:7911",
            tools.path("ip").display(),
            pair.srv,
            tools.path("socat").display()
        )
        .replace(':', "\\:");
        let mut cmd = Command::new(tools.path("socat"));
        cmd.arg(format!(
            "TCP-LISTEN:{omapi_port},bind=127.0.0.1,reuseaddr,fork"
        ))
        .arg(format!("EXEC:{inner}"));
        let forwarder = Proc::spawn("socat", &mut cmd, &dir.join("socat.log"));
        let server = Dhcpd {
            dhcpd: Some(dhcpd),
            _forwarder: forwarder,
            pair,
            dir,
            secret,
            omapi_port,
        };
        let driver = server.driver();
        wait_for("dhcpd's OMAPI port", Duration::from_secs(10), || {
            driver.status().running
        });
        eprintln!("dhcpd and its OMAPI ready in {:?}", started.elapsed());
        server
    }

    fn driver_with(&self, key: OmapiKey) -> IscDhcpdServer {
        IscDhcpdServer::new(
            IscDhcpdConfig::new(
                "dhcpd1",
                self.dir.join("dhcpd.conf"),
                self.dir.join("dhcpd.leases"),
                format!("127.0.0.1:{}", self.omapi_port),
                key,
            )
            .with_timeout(Duration::from_secs(5)),
        )
    }

    fn driver(&self) -> IscDhcpdServer {
        self.driver_with(OmapiKey::from_base64("omapi_key", &self.secret).unwrap())
    }

    /// Asks dhcpd through omshell (in its namespace) for the host named `name`.
    fn omshell_host(&self, tools: &Tools, name: &str) -> String {
        let script = format!(
            "server 127.0.0.1\nport 7911\nkey-algorithm hmac-sha256\nkey omapi_key {}\nconnect\n\
             new host\nset name = \"{name}\"\nopen\n",
            self.secret
        );
        let path = self.dir.join("omshell.in");
        std::fs::write(&path, script).unwrap();
        let mut cmd = self.pair.in_srv(tools.path("sh"));
        cmd.arg("-c").arg(format!(
            "{} < {}",
            tools.path("omshell").display(),
            path.display()
        ));
        let out = run_with_timeout(&mut cmd, Duration::from_secs(10));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn mac(s: &str) -> ClientIdentifier {
    ClientIdentifier::Mac(s.parse().unwrap())
}

const TOOLS: &[&str] = &["dhcpd", "omshell", "udhcpc", "ip", "socat", "sh"];

#[test]
fn dhcpd_leases_scopes_and_omapi_hosts() {
    let Some(tools) = require("dhcpd_leases_scopes_and_omapi_hosts", TOOLS, true) else {
        return;
    };
    let server = Dhcpd::start(&tools);
    let dhcpd1 = server.driver();
    let lab = "192.0.2.0/24".parse().unwrap();

    // Scopes come from dhcpd.conf and cannot be changed.
    let scopes = dhcpd1.list_scopes().unwrap();
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0].subnet, lab);
    assert_eq!(scopes[0].pools.len(), 1);
    assert_eq!(
        scopes[0].pools[0].from,
        "192.0.2.100".parse::<IpAddr>().unwrap()
    );
    assert_eq!(scopes[0].options[0].name.as_deref(), Some("routers"));
    assert_eq!(scopes[0].options[0].value, "192.0.2.1");
    let err = dhcpd1
        .create_scope(&Scope {
            name: None,
            ..scopes[0].clone()
        })
        .unwrap_err();
    assert!(matches!(err, DhcpError::Unsupported { .. }), "{err}");
    assert!(matches!(
        dhcpd1.set_options(None, &[]),
        Err(DhcpError::Unsupported { .. })
    ));

    // A real client's lease, parsed from the lease file.
    let t = Instant::now();
    let got = udhcpc(
        &tools,
        &server.pair,
        &server.dir,
        "02:00:00:00:00:55",
        Some("cli55"),
    );
    eprintln!("udhcpc got {got:?} from dhcpd in {:?}", t.elapsed());
    let page = dhcpd1.list_leases(None, None, None).unwrap();
    assert_eq!(page.next_cursor, None);
    assert_eq!(page.leases.len(), 1, "{page:?}");
    let lease = &page.leases[0];
    assert_eq!(lease.address, IpAddr::V4(got.ip));
    assert_eq!(lease.mac, Some("02:00:00:00:00:55".parse().unwrap()));
    assert_eq!(lease.hostname.as_deref(), Some("cli55"));
    assert_eq!(
        lease.client_id.as_ref().map(ToString::to_string).as_deref(),
        Some("01:02:00:00:00:00:55"),
        "udhcpc's client id is 01 + MAC"
    );
    assert_eq!(lease.state, LeaseState::Active);
    assert_eq!(lease.subnet, Some(lab));
    let expires = lease.expires.unwrap();
    assert!(
        expires > now_secs() && expires <= now_secs() + 600 + 5,
        "{expires}"
    );
    assert_eq!(
        dhcpd1
            .list_leases(Some("198.51.100.0/24".parse().unwrap()), None, None)
            .unwrap()
            .leases,
        vec![]
    );

    // Reservations: the static host from dhcpd.conf.
    let fixed42 = Reservation {
        subnet: Some(lab),
        identifier: mac("02:00:00:00:00:42"),
        address: "192.0.2.42".parse().unwrap(),
        hostname: None,
    };
    assert_eq!(
        dhcpd1.list_reservations(None).unwrap(),
        vec![fixed42.clone()]
    );

    // OMAPI: create a host; omshell sees it; a client with that MAC gets the fixed address.
    let r77 = Reservation {
        subnet: None,
        identifier: mac("02:00:00:00:00:77"),
        address: "192.0.2.77".parse().unwrap(),
        hostname: Some("h77".into()),
    };
    let t = Instant::now();
    dhcpd1.add_reservation(&r77).unwrap();
    eprintln!("OMAPI host create took {:?}", t.elapsed());
    let shown = server.omshell_host(&tools, "h77");
    assert!(
        shown.contains("hardware-address = 02:00:00:00:00:77"),
        "omshell said: {shown}"
    );
    assert!(
        shown.contains("ip-address = c0:00:02:4d"),
        "omshell said: {shown}"
    );
    let got = udhcpc(&tools, &server.pair, &server.dir, "02:00:00:00:00:77", None);
    assert_eq!(IpAddr::V4(got.ip), r77.address);
    assert_eq!(got.hostname.as_deref(), Some("h77"));
    let listed = dhcpd1.list_reservations(Some(lab)).unwrap();
    assert_eq!(
        listed,
        vec![
            fixed42.clone(),
            Reservation {
                subnet: Some(lab),
                ..r77.clone()
            }
        ]
    );

    // Duplicates and addresses outside every subnet are refused before OMAPI is used.
    let dup_mac = Reservation {
        address: "192.0.2.78".parse().unwrap(),
        hostname: None,
        ..r77.clone()
    };
    let err = dhcpd1.add_reservation(&dup_mac).unwrap_err();
    assert!(matches!(err, DhcpError::AlreadyExists { .. }), "{err}");
    let dup_addr = Reservation {
        identifier: mac("02:00:00:00:00:78"),
        hostname: None,
        ..r77.clone()
    };
    assert!(matches!(
        dhcpd1.add_reservation(&dup_addr),
        Err(DhcpError::AlreadyExists { .. })
    ));
    let outside = Reservation {
        identifier: mac("02:00:00:00:00:79"),
        address: "203.0.113.9".parse().unwrap(),
        hostname: None,
        subnet: None,
    };
    assert!(matches!(
        dhcpd1.add_reservation(&outside),
        Err(DhcpError::Invalid { .. })
    ));

    // OMAPI: delete the host; omshell no longer finds it.
    dhcpd1.delete_reservation(None, &r77.identifier).unwrap();
    let shown = server.omshell_host(&tools, "h77");
    assert!(shown.contains("not found"), "omshell said: {shown}");
    assert_eq!(
        dhcpd1.list_reservations(None).unwrap(),
        vec![fixed42.clone()]
    );
    let err = dhcpd1
        .delete_reservation(None, &r77.identifier)
        .unwrap_err();
    assert!(matches!(err, DhcpError::NotFound { .. }), "{err}");

    // A host without a host name gets a generated declaration name; delete by scope.
    let r80 = Reservation {
        subnet: Some(lab),
        identifier: mac("02:00:00:00:00:80"),
        address: "192.0.2.80".parse().unwrap(),
        hostname: None,
    };
    dhcpd1.add_reservation(&r80).unwrap();
    assert!(server
        .omshell_host(&tools, "ipam-020000000080")
        .contains("ip-address = c0:00:02:50"));
    dhcpd1
        .delete_reservation(Some(lab), &r80.identifier)
        .unwrap();

    // By client identifier: udhcpc sends 01 + its MAC, and gets the fixed address.
    let r81 = Reservation {
        subnet: Some(lab),
        identifier: ClientIdentifier::ClientId("01:02:00:00:00:00:81".parse().unwrap()),
        address: "192.0.2.81".parse().unwrap(),
        hostname: Some("h81".into()),
    };
    dhcpd1.add_reservation(&r81).unwrap();
    assert!(dhcpd1.list_reservations(Some(lab)).unwrap().contains(&r81));
    let got = udhcpc(&tools, &server.pair, &server.dir, "02:00:00:00:00:81", None);
    assert_eq!(IpAddr::V4(got.ip), r81.address);
    dhcpd1.delete_reservation(None, &r81.identifier).unwrap();
    assert_eq!(
        dhcpd1.list_reservations(None).unwrap(),
        vec![fixed42.clone()]
    );

    // Status.
    let status = dhcpd1.status();
    assert!(status.running, "{status:?}");
    assert_eq!(
        status.version.as_deref().map(|v| v.starts_with("4.")),
        Some(true),
        "{status:?}"
    );
}

#[test]
fn dhcpd_wrong_key_and_stopped_server() {
    let Some(tools) = require("dhcpd_wrong_key_and_stopped_server", TOOLS, true) else {
        return;
    };
    let mut server = Dhcpd::start(&tools);
    let r = Reservation {
        subnet: None,
        identifier: mac("02:00:00:00:00:77"),
        address: "192.0.2.77".parse().unwrap(),
        hostname: None,
    };

    // A wrong secret: dhcpd refuses the signed request.
    let wrong_secret = server.driver_with(OmapiKey::new("omapi_key", b"not the secret".to_vec()));
    let err = wrong_secret.add_reservation(&r).unwrap_err();
    eprintln!("wrong secret: {err}");
    assert!(matches!(err, DhcpError::Refused { .. }), "{err}");
    assert!(
        err.to_string().contains("dhcpd1") && err.to_string().contains("OMAPI"),
        "{err}"
    );
    assert!(err.to_string().contains("secret is wrong"), "{err}");
    let status = wrong_secret.status();
    assert!(!status.running && status.message.is_some(), "{status:?}");

    // A key name dhcpd does not know.
    let wrong_name =
        server.driver_with(OmapiKey::from_base64("other_key", &server.secret).unwrap());
    let err = wrong_name.add_reservation(&r).unwrap_err();
    eprintln!("wrong key name: {err}");
    assert!(matches!(err, DhcpError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("other_key"), "{err}");

    // Nothing was created.
    let dhcpd1 = server.driver();
    assert_eq!(dhcpd1.list_reservations(None).unwrap().len(), 1);
    assert!(server
        .omshell_host(&tools, "ipam-020000000077")
        .contains("not found"));

    // dhcpd stops: OMAPI calls fail as ServerDown, files can still be read.
    if let Some(mut proc) = server.dhcpd.take() {
        proc.stop();
    }
    let err = dhcpd1.add_reservation(&r).unwrap_err();
    eprintln!("stopped dhcpd: {err}");
    assert!(matches!(err, DhcpError::ServerDown { .. }), "{err}");
    assert!(!dhcpd1.status().running);
    let direct = IscDhcpdServer::new(IscDhcpdConfig::new(
        "dhcpd1",
        server.dir.join("dhcpd.conf"),
        server.dir.join("dhcpd.leases"),
        format!("127.0.0.1:{}", free_port()),
        OmapiKey::from_base64("omapi_key", &server.secret).unwrap(),
    ));
    let err = direct
        .delete_reservation(None, &mac("02:00:00:00:00:42"))
        .unwrap_err();
    assert!(matches!(err, DhcpError::ServerDown { .. }), "{err}");
    assert!(err.to_string().contains("connecting to OMAPI"), "{err}");
    assert_eq!(dhcpd1.list_scopes().unwrap().len(), 1);
}
