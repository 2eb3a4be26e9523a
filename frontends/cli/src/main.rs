//! `ipamctl`: the command-line client of ipam Central.
//!
//! It talks to Central's API over HTTPS. The server's certificate is pinned on first use,
//! like SSH (`~/.config/ipamctl/known_hosts`); `ipamctl login` keeps a session token in
//! `~/.config/ipamctl/session.json` (mode 0600). Output is a table, or JSON with
//! `--output json`. Exit codes: 0 success, 1 other errors, 2 usage, 3 authentication, 4 not
//! found, 5 refused (invalid input, conflict, exhausted), 6 server or network failure, 7 an
//! import with bad rows.
mod conn;
mod csvio;
mod netbox;
mod output;
mod services;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use conn::{ApiFailure, Session};
use output::Output;

#[derive(Parser)]
#[command(
    name = "ipamctl",
    version,
    about = "Command-line client of ipam Central",
    long_about = "Command-line client of ipam Central (Micetro-compatible API over HTTPS).\n\n\
The server certificate is pinned on first use (~/.config/ipamctl/known_hosts); --fingerprint \
pins one given out of band, --insecure skips the check. `ipamctl login` stores a session; \
otherwise --user with IPAM_PASSWORD is used for each call.\n\n\
Exit codes: 0 ok, 1 error, 2 usage, 3 authentication, 4 not found, 5 refused, 6 server or \
network failure, 7 import with bad rows."
)]
struct Cli {
    /// Central's address.
    #[arg(
        long,
        env = "IPAM_URL",
        default_value = "https://localhost:1231",
        global = true
    )]
    url: String,
    /// Login name (with IPAM_PASSWORD) instead of the stored session.
    #[arg(long, env = "IPAM_USER", global = true)]
    user: Option<String>,
    /// Pin this SHA-256 certificate fingerprint instead of the known_hosts entry.
    #[arg(long, env = "IPAM_FINGERPRINT", global = true)]
    fingerprint: Option<String>,
    /// Do not check the server certificate at all.
    #[arg(long, global = true)]
    insecure: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    output: Output,
    /// Configuration directory [default: $XDG_CONFIG_HOME/ipamctl or ~/.config/ipamctl].
    #[arg(long, env = "IPAMCTL_CONFIG_DIR", global = true)]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Log in and store the session (password from IPAM_PASSWORD or the first line of stdin).
    Login {
        /// Login name.
        user: String,
    },
    /// Forget the stored session (and end it on the server).
    Logout,
    /// Ranges and subnets.
    #[command(subcommand)]
    Ranges(RangesCmd),
    /// Allocate addresses (next free) from a range or an ordered pool of ranges.
    Alloc {
        /// Ranges, in order (refs, CIDRs, names or from-to).
        #[arg(required = true)]
        pool: Vec<String>,
        /// How many.
        #[arg(long, short = 'n', default_value_t = 1)]
        count: u64,
        /// Claim them instead of assigning.
        #[arg(long, conflicts_with = "hold")]
        claim: bool,
        /// Hold them for this many seconds.
        #[arg(long)]
        hold: Option<u64>,
        /// Idempotency key: a retry with the same key returns the same addresses.
        #[arg(long)]
        key: Option<String>,
        /// Custom property NAME=VALUE on every address.
        #[arg(long = "prop", value_name = "NAME=VALUE")]
        props: Vec<String>,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
    /// Release addresses (free them and drop their data), all or nothing.
    Release {
        /// Addresses.
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
    /// IPAM records.
    #[command(subcommand)]
    Records(RecordsCmd),
    /// Free address blocks.
    #[command(subcommand)]
    Blocks(BlocksCmd),
    /// History of an object (`ranges/12`, `ranges/10.0.0.0/24`, `ipamRecords/10.0.0.5`, `users/bob`).
    History {
        /// The object.
        object: String,
        /// Most events.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// DNS zones and records (through Central, which changes the server first).
    #[command(subcommand)]
    Dns(services::DnsCmd),
    /// DHCP scopes, reservations and leases (through Central).
    #[command(subcommand)]
    Dhcp(services::DhcpCmd),
    /// Users.
    #[command(subcommand)]
    Users(NamedCmd),
    /// Groups.
    #[command(subcommand)]
    Groups(NamedCmd),
    /// Roles.
    #[command(subcommand)]
    Roles(NamedCmd),
    /// Import ranges or records from CSV, in batches (each all or nothing, idempotent:
    /// rerunning after an interruption resumes without duplicates).
    Import {
        /// CSV files: a header with `address` (records: address, state, custom
        /// properties) or `from,to`/`cidr` (ranges: name, subnet, container, locked,
        /// auto_assign, custom properties). With --netbox: NetBox's CSV exports of
        /// prefixes, IP ranges and IP addresses.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The files are NetBox exports: VRFs become address spaces, prefixes and IP
        /// ranges become ranges, IP addresses become records; prints what was not mapped.
        #[arg(long)]
        netbox: bool,
        /// Rows per batch.
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        /// Check the rows only; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Export ranges, or the records of a range, as CSV or NDJSON on stdout (streamed).
    Export {
        /// What.
        #[arg(value_enum)]
        what: ExportWhat,
        /// For records: the range.
        range: Option<String>,
        /// Format.
        #[arg(long, value_enum, default_value = "csv")]
        format: csvio::Format,
        /// A filter in the API's grammar (ranges: any field; records: `state=Claimed`,
        /// `Owner=alice`, ...).
        #[arg(long)]
        filter: Option<String>,
        /// For records: every address, free ones too (default: used or annotated ones).
        #[arg(long)]
        all: bool,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportWhat {
    Ranges,
    Records,
}

#[derive(Subcommand)]
enum RangesCmd {
    /// List ranges (filter in the API's grammar; a bare address finds the ranges containing it).
    List {
        /// Filter.
        #[arg(long, short)]
        filter: Option<String>,
        /// Most ranges.
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
    /// Show one range.
    Show {
        /// Ref, CIDR, name or from-to.
        range: String,
    },
    /// Create a range.
    Create {
        /// CIDR (10.0.0.0/24) or FROM-TO.
        range: String,
        /// Name (default: the CIDR).
        #[arg(long)]
        name: Option<String>,
        /// A container (nothing is allocated in it).
        #[arg(long)]
        container: bool,
        /// Custom property NAME=VALUE.
        #[arg(long = "prop", value_name = "NAME=VALUE")]
        props: Vec<String>,
        /// Save comment.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
    },
    /// Delete a range (its sub-ranges move up unless --recursive).
    Delete {
        /// The range.
        range: String,
        /// Delete its sub-ranges too.
        #[arg(long)]
        recursive: bool,
    },
    /// Show a range's sub-ranges as a tree.
    Tree {
        /// The range.
        range: String,
        /// Levels.
        #[arg(long, default_value_t = 3)]
        depth: u64,
    },
}

#[derive(Subcommand)]
enum RecordsCmd {
    /// Show an address's record (any address, stored or not).
    Get {
        /// Address.
        address: String,
    },
    /// Set state and custom properties: NAME=VALUE (and state=Assigned, ...).
    Set {
        /// Address.
        address: String,
        /// NAME=VALUE pairs.
        #[arg(required = true)]
        values: Vec<String>,
    },
    /// Claim an address.
    Claim {
        /// Address.
        address: String,
    },
}

#[derive(Subcommand)]
enum BlocksCmd {
    /// Find free blocks in a range (by --mask or --size), optionally creating them as subnets.
    Find {
        /// The range.
        range: String,
        /// Prefix length.
        #[arg(long, conflicts_with = "size")]
        mask: Option<u8>,
        /// Number of addresses.
        #[arg(long)]
        size: Option<u64>,
        /// How many blocks.
        #[arg(long, default_value_t = 1)]
        limit: u64,
        /// Create each block as a subnet.
        #[arg(long)]
        create: bool,
    },
}

#[derive(Subcommand)]
enum NamedCmd {
    /// List them.
    List,
    /// Create one (users: password from IPAM_NEW_PASSWORD or the first line of stdin).
    Create {
        /// Name.
        name: String,
        /// Description or full name.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete one.
    Delete {
        /// Name or ref.
        name: String,
    },
}

const V2: &str = "/mmws/api/v2";

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = match rt.block_on(run(cli)) {
        Ok(code) => code,
        // The reader of our output went away (`| head`): not worth an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            0
        }
        Err(e) => {
            eprintln!("ipamctl: {e:#}");
            match e.downcast_ref::<ApiFailure>() {
                Some(f) => f.exit_code(),
                None if e.downcast_ref::<ipam_client::ClientError>().is_some() => 6,
                None => 1,
            }
        }
    };
    std::process::exit(code);
}

fn read_secret(env: &str, what: &str) -> Result<String> {
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    eprintln!("{what} (one line on stdin):");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `NAME=VALUE` pairs as a JSON map.
fn pairs(v: &[String]) -> Result<serde_json::Map<String, Value>> {
    let mut m = serde_json::Map::new();
    for p in v {
        let (k, val) = p
            .split_once('=')
            .with_context(|| format!("{p:?} is not NAME=VALUE"))?;
        m.insert(k.trim().to_string(), Value::String(val.to_string()));
    }
    Ok(m)
}

/// A range argument as a path: `ranges/12`, a CIDR, a name or from-to.
fn range_path(r: &str) -> String {
    let r = r.trim().trim_start_matches('/');
    let r = r.strip_prefix("ranges/").unwrap_or(r);
    format!("{V2}/ranges/{}", conn::encode_path(r))
}

async fn run(cli: Cli) -> Result<i32> {
    let dirs = conn::Dirs::new(cli.config_dir.clone())?;
    let out = cli.output;
    if let Cmd::Completions { shell } = cli.cmd {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "ipamctl", &mut buf);
        // A reader that stops early (`| head`) is not an error.
        use std::io::Write;
        return match std::io::stdout().write_all(&buf) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(0),
        };
    }
    if let Cmd::Import {
        files,
        batch,
        dry_run: true,
        netbox: false,
        ..
    } = &cli.cmd
    {
        let mut code = 0;
        for f in files {
            let r = csvio::check_file(f, *batch).await?;
            code = code.max(csvio::report(&r, out));
        }
        return Ok(code);
    }
    let trust = conn::Trust {
        fingerprint: cli.fingerprint.clone(),
        insecure: cli.insecure,
    };
    if let Cmd::Login { user } = &cli.cmd {
        let mut s = Session::connect(&cli.url, &dirs, &trust, None).await?;
        let pw = read_secret("IPAM_PASSWORD", &format!("password for {user}"))?;
        s.client
            .login(user, &pw)
            .await
            .map_err(anyhow::Error::from)?;
        dirs.save_session(&cli.url, s.client.session_token().unwrap_or_default())?;
        eprintln!("logged in to {} as {user}", cli.url);
        return Ok(0);
    }
    let basic = match &cli.user {
        Some(u) => Some((
            u.clone(),
            read_secret("IPAM_PASSWORD", &format!("password for {u}"))?,
        )),
        None => None,
    };
    let mut s = Session::connect(&cli.url, &dirs, &trust, basic).await?;
    match cli.cmd {
        Cmd::Login { .. } | Cmd::Completions { .. } => unreachable!("handled above"),
        Cmd::Logout => {
            let _ = s
                .call("DELETE", &format!("{V2}/micetro/sessions"), None)
                .await;
            dirs.forget_session()?;
            eprintln!("logged out");
        }
        Cmd::Ranges(c) => ranges(&mut s, c, out).await?,
        Cmd::Alloc {
            pool,
            count,
            claim,
            hold,
            key,
            props,
            comment,
        } => {
            let mode = match (claim, hold) {
                (true, _) => "claim",
                (false, Some(_)) => "hold",
                _ => "assign",
            };
            let pool: Vec<String> = pool
                .iter()
                .map(|p| p.trim_start_matches("ranges/").to_string())
                .collect();
            let mut body = json!({"pool": pool, "count": count, "mode": mode,
                "properties": pairs(&props)?, "saveComment": comment});
            if let Some(h) = hold {
                body["holdSeconds"] = json!(h);
            }
            let headers: Vec<(&str, &str)> = key
                .as_deref()
                .map(|k| vec![("Idempotency-Key", k)])
                .unwrap_or_default();
            let r = s
                .call_h(
                    "POST",
                    &format!("{V2}/addressAllocations"),
                    Some(body),
                    &headers,
                )
                .await?;
            let addrs = r["addresses"].as_array().cloned().unwrap_or_default();
            output::list(
                out,
                &r,
                &["address"],
                addrs
                    .iter()
                    .map(|a| vec![a.as_str().unwrap_or_default().to_string()]),
            );
        }
        Cmd::Release { addresses, comment } => {
            let r = s
                .call(
                    "POST",
                    &format!("{V2}/addressReleases"),
                    Some(json!({"addresses": addresses, "saveComment": comment})),
                )
                .await?;
            output::message(out, &r, &format!("released {}", r["released"]));
        }
        Cmd::Records(c) => records(&mut s, c, out).await?,
        Cmd::Blocks(BlocksCmd::Find {
            range,
            mask,
            size,
            limit,
            create,
        }) => {
            let mut q = format!("limit={limit}");
            match (mask, size) {
                (Some(m), _) => q.push_str(&format!("&mask={m}")),
                (None, Some(n)) => q.push_str(&format!("&size={n}")),
                (None, None) => {}
            }
            let r = s
                .call(
                    "GET",
                    &format!("{}/availableAddressBlocks?{q}", range_path(&range)),
                    None,
                )
                .await?;
            let blocks = r["addressBlocks"].as_array().cloned().unwrap_or_default();
            if create {
                for b in &blocks {
                    s.call(
                        "POST",
                        &format!("{V2}/ranges"),
                        Some(json!({"range": {"from": b["from"], "to": b["to"], "subnet": true}})),
                    )
                    .await?;
                }
            }
            output::list(
                out,
                &r,
                &["from", "to"],
                blocks.iter().map(|b| {
                    vec![
                        b["from"].as_str().unwrap_or_default().to_string(),
                        b["to"].as_str().unwrap_or_default().to_string(),
                    ]
                }),
            );
        }
        Cmd::History { object, limit } => {
            let o = object.trim_start_matches('/');
            let r = s
                .call(
                    "GET",
                    &format!("{V2}/{}/history?limit={limit}", conn::encode_path(o)),
                    None,
                )
                .await?;
            let ev = r["events"].as_array().cloned().unwrap_or_default();
            output::list(
                out,
                &r,
                &["id", "time", "user", "event", "object", "comment", "what"],
                ev.iter().map(|e| {
                    [
                        "id",
                        "timestamp",
                        "username",
                        "eventType",
                        "objName",
                        "saveComment",
                        "eventText",
                    ]
                    .iter()
                    .map(|k| output::text(&e[*k]))
                    .collect()
                }),
            );
        }
        Cmd::Dns(c) => services::dns(&mut s, c, out).await?,
        Cmd::Dhcp(c) => services::dhcp(&mut s, c, out).await?,
        Cmd::Users(c) => named(&mut s, "users", "user", c, out).await?,
        Cmd::Groups(c) => named(&mut s, "groups", "group", c, out).await?,
        Cmd::Roles(c) => named(&mut s, "roles", "role", c, out).await?,
        Cmd::Import {
            files,
            netbox: true,
            dry_run,
            ..
        } => {
            if dry_run {
                bail!("--dry-run is not available with --netbox");
            }
            return netbox::migrate(&mut s, &files, out).await;
        }
        Cmd::Import {
            files,
            batch,
            quiet,
            ..
        } => {
            let mut code = 0;
            for f in &files {
                let r = csvio::import(&mut s, f, batch, !quiet).await?;
                code = code.max(csvio::report(&r, out));
            }
            return Ok(code);
        }
        Cmd::Export {
            what,
            range,
            format,
            filter,
            all,
        } => match what {
            ExportWhat::Ranges => csvio::export_ranges(&mut s, filter.as_deref(), format).await?,
            ExportWhat::Records => {
                let r = range.context("export records needs the range")?;
                match filter {
                    Some(f) => {
                        csvio::export_records_filtered(&mut s, &range_path(&r), &f, format).await?
                    }
                    None => csvio::export_records(&mut s, &range_path(&r), !all, format).await?,
                }
            }
        },
    }
    Ok(0)
}

async fn ranges(s: &mut Session, c: RangesCmd, out: Output) -> Result<()> {
    let row = |r: &Value| -> Vec<String> {
        vec![
            output::text(&r["ref"]),
            output::text(&r["name"]),
            output::text(&r["from"]),
            output::text(&r["to"]),
            format!("{}%", output::text(&r["utilizationPercentage"])),
            if r["isContainer"] == true {
                "container"
            } else if r["subnet"] == true {
                "subnet"
            } else {
                "range"
            }
            .into(),
        ]
    };
    const COLS: [&str; 6] = ["ref", "name", "from", "to", "used", "kind"];
    match c {
        RangesCmd::List { filter, limit } => {
            let mut q = format!("limit={limit}");
            if let Some(f) = filter {
                q.push_str(&format!("&filter={}", conn::encode_query(&f)));
            }
            let r = s.call("GET", &format!("{V2}/ranges?{q}"), None).await?;
            let list = r["ranges"].as_array().cloned().unwrap_or_default();
            output::list(out, &r, &COLS, list.iter().map(row));
        }
        RangesCmd::Show { range } => {
            let r = s.call("GET", &range_path(&range), None).await?;
            output::object(out, &r["range"]);
        }
        RangesCmd::Create {
            range,
            name,
            container,
            props,
            comment,
        } => {
            let mut obj = json!({"name": range, "isContainer": container,
                "customProperties": pairs(&props)?});
            if let Some((f, t)) = range.split_once('-') {
                obj["from"] = json!(f);
                obj["to"] = json!(t);
                obj["name"] = json!(name.clone().unwrap_or_default());
            } else if let Some(n) = name {
                let (f, t) = cidr_bounds(&range)?;
                obj["from"] = json!(f);
                obj["to"] = json!(t);
                obj["name"] = json!(n);
            }
            let r = s
                .call(
                    "POST",
                    &format!("{V2}/ranges"),
                    Some(json!({"range": obj, "saveComment": comment})),
                )
                .await?;
            output::message(out, &r, &output::text(&r["ref"]));
        }
        RangesCmd::Delete { range, recursive } => {
            s.call(
                "DELETE",
                &format!("{}?deleteSubranges={recursive}", range_path(&range)),
                None,
            )
            .await?;
            output::message(out, &json!({}), "deleted");
        }
        RangesCmd::Tree { range, depth } => {
            let top = s.call("GET", &range_path(&range), None).await?;
            let r = s
                .call(
                    "GET",
                    &format!("{}/subranges?depth={depth}", range_path(&range)),
                    None,
                )
                .await?;
            if out == Output::Json {
                output::object(
                    out,
                    &json!({"range": top["range"], "subranges": r["ranges"]}),
                );
                return Ok(());
            }
            let root = &top["range"];
            println!(
                "{} {}",
                output::text(&root["name"]),
                output::text(&root["ref"])
            );
            let list = r["ranges"].as_array().cloned().unwrap_or_default();
            let mut stack: Vec<String> = vec![output::text(&root["to"])];
            for x in &list {
                let (from, to) = (output::text(&x["from"]), output::text(&x["to"]));
                let fa: std::net::IpAddr = from.parse()?;
                while stack.len() > 1
                    && stack
                        .last()
                        .and_then(|t| t.parse::<std::net::IpAddr>().ok())
                        .is_some_and(|t| t < fa)
                {
                    stack.pop();
                }
                println!(
                    "{}{} {} ({}%)",
                    "  ".repeat(stack.len()),
                    output::text(&x["name"]),
                    output::text(&x["ref"]),
                    output::text(&x["utilizationPercentage"])
                );
                stack.push(to);
            }
        }
    }
    Ok(())
}

fn cidr_bounds(c: &str) -> Result<(String, String)> {
    let (a, l) = c
        .split_once('/')
        .with_context(|| format!("{c:?} is not a CIDR"))?;
    let l: u32 = l.parse()?;
    match a.parse::<std::net::IpAddr>()? {
        std::net::IpAddr::V4(x) if l <= 32 => {
            let n = u32::from(x);
            let host = if l == 32 { 0 } else { u32::MAX >> l };
            Ok((
                x.to_string(),
                std::net::Ipv4Addr::from(n | host).to_string(),
            ))
        }
        std::net::IpAddr::V6(x) if l <= 128 => {
            let n = u128::from(x);
            let host = if l == 128 { 0 } else { u128::MAX >> l };
            Ok((
                x.to_string(),
                std::net::Ipv6Addr::from(n | host).to_string(),
            ))
        }
        _ => bail!("{c:?}: prefix length too long"),
    }
}

async fn records(s: &mut Session, c: RecordsCmd, out: Output) -> Result<()> {
    let path = |a: &str| format!("{V2}/ipamRecords/{}", conn::encode_path(a.trim()));
    match c {
        RecordsCmd::Get { address } => {
            let r = s.call("GET", &path(&address), None).await?;
            output::object(out, &r["ipamRecord"]);
        }
        RecordsCmd::Set { address, values } => {
            s.call(
                "PUT",
                &path(&address),
                Some(json!({"properties": pairs(&values)?})),
            )
            .await?;
            output::message(out, &json!({}), "updated");
        }
        RecordsCmd::Claim { address } => {
            s.call(
                "PUT",
                &path(&address),
                Some(json!({"properties": {"claimed": true}})),
            )
            .await?;
            output::message(out, &json!({}), "claimed");
        }
    }
    Ok(())
}

async fn named(s: &mut Session, coll: &str, one: &str, c: NamedCmd, out: Output) -> Result<()> {
    match c {
        NamedCmd::List => {
            let r = s.call("GET", &format!("{V2}/{coll}"), None).await?;
            let list = r[coll].as_array().cloned().unwrap_or_default();
            output::list(
                out,
                &r,
                &["ref", "name", "description"],
                list.iter().map(|x| {
                    vec![
                        output::text(&x["ref"]),
                        output::text(&x["name"]),
                        output::text(if x["description"].is_null() {
                            &x["fullName"]
                        } else {
                            &x["description"]
                        }),
                    ]
                }),
            );
        }
        NamedCmd::Create { name, description } => {
            let obj = if one == "user" {
                let pw = read_secret(
                    "IPAM_NEW_PASSWORD",
                    &format!("password for the new user {name}"),
                )?;
                json!({"name": name, "password": pw, "fullName": description})
            } else {
                json!({"name": name, "description": description})
            };
            let r = s
                .call("POST", &format!("{V2}/{coll}"), Some(json!({ one: obj })))
                .await?;
            output::message(out, &r, &output::text(&r["ref"]));
        }
        NamedCmd::Delete { name } => {
            let n = name.trim_start_matches(&format!("{coll}/")).to_string();
            s.call(
                "DELETE",
                &format!("{V2}/{coll}/{}", conn::encode_path(&n)),
                None,
            )
            .await?;
            output::message(out, &json!({}), "deleted");
        }
    }
    Ok(())
}
