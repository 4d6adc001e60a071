//! The gate on hosts a tenant names (a mailbox's IMAP and SMTP servers, a PBX): the server must
//! not be made to connect to its own network (loopback, private ranges, link-local cloud
//! metadata, …), a server-side request forgery.
//!
//! A name is judged twice: as written ([`is_private_host`], for a clear answer when the
//! settings are saved), and by what it resolves to when connecting ([`resolve_public`]), which
//! refuses the host if *any* of its addresses is private. The caller then connects to exactly
//! the addresses that were vetted, never resolving the name again, so a DNS answer that changes
//! between the check and the connection (DNS rebinding) cannot swap in an internal address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is an address the server must not connect to on a tenant's behalf: loopback,
/// private, shared (carrier-grade NAT), link-local, unspecified, broadcast, multicast, reserved
/// and benchmarking IPv4 ranges; IPv6 loopback, unspecified, unique-local, link- and
/// site-local, multicast; and IPv6 forms that embed an IPv4 address (IPv4-mapped,
/// IPv4-compatible, NAT64's `64:ff9b::/96`), judged by the address they embed.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_v4(ip),
        IpAddr::V6(ip) => is_forbidden_v6(ip),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        // "This network" 0.0.0.0/8, shared address space 100.64.0.0/10, IETF protocol
        // assignments 192.0.0.0/24, benchmarking 198.18.0.0/15, reserved 240.0.0.0/4.
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let segments = ip.segments();
    // IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks) and NAT64.
    let embedded = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    if segments[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_forbidden_v4(embedded);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_forbidden_v4(embedded);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || ip.is_multicast()
        // Site-local fec0::/10, deprecated but private.
        || (segments[0] & 0xffc0) == 0xfec0
}

/// A host as written in settings: `localhost` (and its subdomains) or a literal address that
/// [`is_forbidden_ip`] refuses. Other names are judged when resolved ([`resolve_public`]).
pub fn is_private_host(host: &str) -> bool {
    let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
    let lower = bare.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(is_forbidden_ip)
}

/// Why a host may not be connected to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct HostRefusal {
    pub reason: String,
    /// The host is (or resolves to) the server's own network: refused for good. Otherwise it
    /// could not be resolved, which may pass.
    pub private: bool,
}

impl HostRefusal {
    fn private(reason: String) -> HostRefusal {
        HostRefusal {
            reason,
            private: true,
        }
    }
}

/// Resolves `host` and answers its addresses, or why it may not be connected to: it cannot be
/// resolved, or one of its addresses is on the server's own network. Connect to the addresses
/// answered (not to the name again), so the vetted address is the one used.
pub async fn resolve_public(host: &str, port: u16) -> Result<Vec<SocketAddr>, HostRefusal> {
    let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
    if is_private_host(bare) {
        return Err(HostRefusal::private(format!(
            "`{host}` is an address on the server's own network"
        )));
    }
    lookup_and_vet(bare, port).await
}

/// Resolves `host` through the system resolver and vets every address it answers.
async fn lookup_and_vet(host: &str, port: u16) -> Result<Vec<SocketAddr>, HostRefusal> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| HostRefusal {
            reason: format!("`{host}` cannot be resolved: {err}"),
            private: false,
        })?
        .collect();
    vet(host, addresses)
}

/// The addresses, when none of them is on the server's own network: one private address among
/// public ones is enough to refuse, as a resolver may answer either on the next lookup.
fn vet(host: &str, addresses: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, HostRefusal> {
    if addresses.is_empty() {
        return Err(HostRefusal {
            reason: format!("`{host}` resolves to no address"),
            private: false,
        });
    }
    if let Some(private) = addresses.iter().find(|a| is_forbidden_ip(a.ip())) {
        return Err(HostRefusal::private(format!(
            "`{host}` resolves to {}, an address on the server's own network",
            private.ip()
        )));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden_in_every_spelling() {
        for literal in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            let ip: IpAddr = literal.parse().unwrap();
            assert!(is_forbidden_ip(ip), "{literal} must be forbidden");
            assert!(is_private_host(literal), "{literal}");
            assert!(is_private_host(&format!("[{literal}]")) || ip.is_ipv4());
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(!is_forbidden_ip(ip), "{public} is public");
            assert!(!is_private_host(public), "{public}");
        }
        for name in [
            "localhost",
            "LOCALHOST.",
            "mail.localhost",
            "imap.Localhost",
        ] {
            assert!(is_private_host(name), "{name}");
        }
        assert!(!is_private_host("mail.example.com"));
    }

    #[tokio::test]
    async fn resolution_refuses_names_and_literals_of_the_own_network() {
        for host in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "::ffff:127.0.0.1",
            "[::ffff:7f00:1]",
            "10.0.0.8",
        ] {
            let err = resolve_public(host, 143).await.unwrap_err();
            assert!(err.private, "{host}: {err}");
            assert!(err.reason.contains("server's own network"), "{host}: {err}");
        }
        // Spellings the address parser does not take but the system resolver does (inet_aton's
        // short and decimal forms) pass the check as written, and are caught once resolved.
        for sneaky in ["127.1", "2130706433", "0x7f.1"] {
            assert!(!is_private_host(sneaky), "{sneaky}");
            let err = resolve_public(sneaky, 143).await.unwrap_err();
            assert!(err.private, "{sneaky}: {err}");
            assert!(
                err.reason.contains("resolves to 127.0.0.1"),
                "{sneaky}: {err}"
            );
        }
        // The system resolver's answer for a name is vetted too, whatever the name looks like.
        let err = lookup_and_vet("localhost", 25).await.unwrap_err();
        assert!(err.private, "{err}");
        assert!(
            err.reason.contains("resolves to") && err.reason.contains("own network"),
            "{err}"
        );
        let public = SocketAddr::from(([8, 8, 4, 4], 25));
        let mapped: SocketAddr = "[::ffff:192.168.0.1]:25".parse().unwrap();
        assert!(vet("mx.example", vec![public, mapped]).is_err());
        assert!(vet("mx.example", vec![]).is_err());
        assert_eq!(vet("mx.example", vec![public]).unwrap(), vec![public]);
        // A public literal needs no DNS and is answered as is.
        assert_eq!(
            resolve_public("8.8.8.8", 993).await.unwrap(),
            vec![SocketAddr::from(([8, 8, 8, 8], 993))]
        );
    }
}
