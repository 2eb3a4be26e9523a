//! The [`DhcpServer`] trait every driver implements, and [`execute`], which runs a protocol
//! [`DhcpOp`] against one.

use std::net::IpAddr;

use ipam_agent_proto::{
    Cidr, ClientIdentifier, DhcpOp, DhcpOption, Lease, Reservation, ResponseBody, Scope,
    ServerKind, ServerStatus,
};

use crate::error::{Ctx, DhcpError};

/// The page size of [`DhcpServer::list_leases`] when the caller gives none.
pub const DEFAULT_LEASE_PAGE: u32 = 1_000;
/// The largest page of [`DhcpServer::list_leases`], whatever is asked. A lease encodes to about
/// 250 bytes of JSON, so a full page stays far under the protocol's 16 MiB frame limit.
pub const MAX_LEASE_PAGE: u32 = 10_000;

/// One page of leases, in ascending address order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasePage {
    /// This page's leases.
    pub leases: Vec<Lease>,
    /// Pass this back to get the next page; `None` on the last page. It is the last address of
    /// this page. A full page may carry a cursor although nothing follows (the next page is
    /// then empty); a page shorter than asked is always the last.
    pub next_cursor: Option<String>,
}

/// A DHCP server the agent manages: Kea ([`KeaServer`](crate::KeaServer)) or ISC dhcpd
/// ([`IscDhcpdServer`](crate::IscDhcpdServer)).
///
/// The trait is object-safe; an agent holds `Vec<Box<dyn DhcpServer>>` and finds a server by
/// [`name`](DhcpServer::name). Every method **blocks** on network or file I/O, bounded by the
/// driver's configured timeout: call it from a blocking thread (`tokio::task::spawn_blocking`),
/// never on an async executor thread. Drivers are `Send + Sync` and serialize their own
/// read-modify-write cycles, so calls may come from several threads at once.
///
/// Values are the protocol's own types, so the agent passes requests and answers straight
/// through (see [`execute`]). Changes are applied to the server and made durable (Kea:
/// `config-write`; dhcpd: its lease file) before a method returns `Ok`.
pub trait DhcpServer: Send + Sync {
    /// The name the agent knows this server by (the one in `hello` and in requests).
    fn name(&self) -> &str;

    /// The kind of server, which the agent reports in `hello`.
    fn kind(&self) -> ServerKind;

    /// Every scope the server serves, with pools, options and lease time, in the server's order.
    fn list_scopes(&self) -> Result<Vec<Scope>, DhcpError>;

    /// Creates a scope. [`DhcpError::AlreadyExists`] when the server has a scope for this subnet.
    fn create_scope(&self, scope: &Scope) -> Result<(), DhcpError>;

    /// Replaces the name, pools, options and lease time of the scope of `scope.subnet`, keeping
    /// its reservations and server-specific settings. [`DhcpError::NotFound`] when there is none.
    fn update_scope(&self, scope: &Scope) -> Result<(), DhcpError>;

    /// Deletes the scope of `subnet` with its reservations. Leases already given stay in the
    /// server's lease database until they expire. [`DhcpError::NotFound`] when there is none.
    fn delete_scope(&self, subnet: Cidr) -> Result<(), DhcpError>;

    /// Replaces the options of the scope of `subnet`, or the server-wide options when `subnet` is
    /// `None`.
    fn set_options(&self, subnet: Option<Cidr>, options: &[DhcpOption]) -> Result<(), DhcpError>;

    /// The host reservations of the scope of `subnet`, or all of them (including server-wide
    /// ones, whose `subnet` is `None`) when `subnet` is `None`.
    fn list_reservations(&self, subnet: Option<Cidr>) -> Result<Vec<Reservation>, DhcpError>;

    /// Adds a host reservation. The driver checks before sending anything that the address lies
    /// in one of the server's scopes (the given one, if any; else [`DhcpError::Invalid`], or
    /// [`DhcpError::NotFound`] for a scope the server does not have) and that neither the client
    /// nor the address is reserved there already ([`DhcpError::AlreadyExists`]). A reservation
    /// without a scope is filed under the scope that contains its address, and is listed with
    /// that scope afterwards.
    fn add_reservation(&self, reservation: &Reservation) -> Result<(), DhcpError>;

    /// Deletes the reservation of `identifier` in the scope of `subnet`. With `subnet` `None`
    /// the client's server-wide reservation goes, or else its reservation in the one scope that
    /// has one ([`DhcpError::Invalid`] when several scopes have one: name the scope).
    /// [`DhcpError::NotFound`] when there is none.
    fn delete_reservation(
        &self,
        subnet: Option<Cidr>,
        identifier: &ClientIdentifier,
    ) -> Result<(), DhcpError>;

    /// One page of leases (of the scope of `subnet`, or all), in ascending address order,
    /// starting after `cursor` (a previous page's [`LeasePage::next_cursor`]); at most `limit`
    /// (default [`DEFAULT_LEASE_PAGE`], capped at [`MAX_LEASE_PAGE`]).
    fn list_leases(
        &self,
        subnet: Option<Cidr>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<LeasePage, DhcpError>;

    /// Whether the server answers its control channel, its version and uptime when known.
    /// Never fails: a server that does not answer is reported with `running: false` and the
    /// reason in `message`.
    fn status(&self) -> ServerStatus;
}

/// Runs one protocol operation against `server` and builds the answer the agent sends back.
///
/// The operation is validated first ([`DhcpOp::validate`]); a failure is
/// [`DhcpError::Invalid`] and nothing is sent to the server.
pub fn execute(server: &dyn DhcpServer, op: &DhcpOp) -> Result<ResponseBody, DhcpError> {
    op.validate()
        .map_err(|err| Ctx::new(server.name(), op.name()).invalid(err.to_string()))?;
    let done = |()| ResponseBody::Done {};
    match op {
        DhcpOp::ListScopes {} => server
            .list_scopes()
            .map(|scopes| ResponseBody::Scopes { scopes }),
        DhcpOp::CreateScope { scope } => server.create_scope(scope).map(done),
        DhcpOp::UpdateScope { scope } => server.update_scope(scope).map(done),
        DhcpOp::DeleteScope { subnet } => server.delete_scope(*subnet).map(done),
        DhcpOp::SetOptions { subnet, options } => server.set_options(*subnet, options).map(done),
        DhcpOp::ListReservations { subnet } => server
            .list_reservations(*subnet)
            .map(|reservations| ResponseBody::Reservations { reservations }),
        DhcpOp::AddReservation { reservation } => server.add_reservation(reservation).map(done),
        DhcpOp::DeleteReservation { subnet, identifier } => {
            server.delete_reservation(*subnet, identifier).map(done)
        }
        DhcpOp::ListLeases {
            subnet,
            cursor,
            limit,
        } => server
            .list_leases(*subnet, cursor.as_deref(), *limit)
            .map(|page| ResponseBody::Leases {
                leases: page.leases,
                next_cursor: page.next_cursor,
            }),
    }
}

/// The page size to use for a requested `limit`.
pub(crate) fn page_limit(limit: Option<u32>) -> usize {
    let limit = limit.unwrap_or(DEFAULT_LEASE_PAGE).clamp(1, MAX_LEASE_PAGE);
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// Parses a lease cursor (the last address of the previous page).
pub(crate) fn parse_cursor(
    ctx: Ctx<'_>,
    cursor: Option<&str>,
) -> Result<Option<IpAddr>, DhcpError> {
    cursor
        .map(|c| {
            c.parse::<IpAddr>().map_err(|_| {
                ctx.invalid(format!(
                    "the cursor {c:?} is not one this agent made (expected an IP address)"
                ))
            })
        })
        .transpose()
}

/// A display form of a client identifier: `MAC 02:00:00:00:00:42`.
pub(crate) fn describe_identifier(identifier: &ClientIdentifier) -> String {
    match identifier {
        ClientIdentifier::Mac(mac) => format!("MAC {mac}"),
        ClientIdentifier::ClientId(id) => format!("client id {id}"),
        ClientIdentifier::Duid(id) => format!("DUID {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(None), 1_000);
        assert_eq!(page_limit(Some(0)), 1);
        assert_eq!(page_limit(Some(5)), 5);
        assert_eq!(page_limit(Some(u32::MAX)), 10_000);
    }

    #[test]
    fn cursors() {
        let ctx = Ctx::new("s", "list_leases");
        assert_eq!(parse_cursor(ctx, None).unwrap(), None);
        assert_eq!(
            parse_cursor(ctx, Some("192.0.2.7")).unwrap(),
            Some("192.0.2.7".parse().unwrap())
        );
        assert!(matches!(
            parse_cursor(ctx, Some("x")),
            Err(DhcpError::Invalid { .. })
        ));
    }
}
