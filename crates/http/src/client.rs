//! Who the client is, for per-client limits: the socket peer, or — only when the peer is a
//! proxy the operator trusts (`TRUSTED_PROXIES`) — the address the proxies forwarded, read
//! right to left. IPv6 clients are keyed by their network prefix (default /64): one
//! subscriber usually holds a whole /64 and could otherwise rotate through it.

use std::{fmt, net::IpAddr, str::FromStr};

/// An address block, `192.0.2.0/24` or `2001:db8::/32` (a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// The text is not an address or an address block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an address or address block (CIDR): {0:?}")]
pub struct InvalidCidr(String);

impl FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(text: &str) -> Result<Self, InvalidCidr> {
        let invalid = || InvalidCidr(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| invalid())?,
            None => bits,
        };
        if prefix > bits {
            return Err(invalid());
        }
        Ok(Self {
            network: mask(network, prefix),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Whether `address` is in the block.
    #[must_use]
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = unmap(address);
        address.is_ipv4() == self.network.is_ipv4() && mask(address, self.prefix) == self.network
    }
}

/// `address` with all but its first `prefix` bits cleared.
fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.1`) is the IPv4 address.
fn unmap(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// How a portal tells clients apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddressing {
    trusted_proxies: Vec<Cidr>,
    ipv6_prefix: u8,
}

impl Default for ClientAddressing {
    /// No trusted proxy (forwarding headers ignored), IPv6 keyed by /64.
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            ipv6_prefix: 64,
        }
    }
}

impl ClientAddressing {
    /// Forwarding headers are read only from peers in `trusted_proxies`; IPv6 clients are
    /// keyed by their first `ipv6_prefix` bits (at most 128).
    #[must_use]
    pub fn new(trusted_proxies: Vec<Cidr>, ipv6_prefix: u8) -> Self {
        Self {
            trusted_proxies,
            ipv6_prefix: ipv6_prefix.min(128),
        }
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|cidr| cidr.contains(address))
    }

    /// The client's key for per-client limits: `peer`, or when `peer` is a trusted proxy,
    /// the rightmost address of the `Forwarded` (preferred) or `X-Forwarded-For` chain that
    /// is not itself a trusted proxy. An entry that cannot be read stops the walk at the
    /// hop that sent it.
    #[must_use]
    pub fn client_key(
        &self,
        peer: Option<IpAddr>,
        forwarded: Option<&str>,
        x_forwarded_for: Option<&str>,
    ) -> Option<String> {
        let mut client = unmap(peer?);
        if self.trusted(client) {
            let chain: Vec<Option<IpAddr>> = match (forwarded, x_forwarded_for) {
                (Some(forwarded), _) => forwarded.split(',').map(forwarded_for).collect(),
                (None, Some(list)) => list.split(',').map(|hop| parse_hop(hop.trim())).collect(),
                (None, None) => Vec::new(),
            };
            for hop in chain.into_iter().rev() {
                match hop {
                    Some(address) => {
                        client = unmap(address);
                        if !self.trusted(client) {
                            break;
                        }
                    }
                    None => break,
                }
            }
        }
        Some(match client {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(_) => format!("{}/{}", mask(client, self.ipv6_prefix), self.ipv6_prefix),
        })
    }
}

/// The `for=` address of one `Forwarded` element (RFC 7239).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_hop(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`,
/// `2001:db8::1`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse() {
        return Some(address);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn behind(proxies: &str) -> ClientAddressing {
        ClientAddressing::new(proxies.split(',').map(|c| c.parse().unwrap()).collect(), 64)
    }

    #[test]
    fn blocks_parse_and_contain() {
        let block: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(block.contains("10.1.2.3".parse().unwrap()));
        assert!(block.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!block.contains("11.0.0.1".parse().unwrap()));
        assert_eq!(
            "2001:db8::1/32".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            "192.0.2.7".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.7/32"
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn without_trusted_proxies_forwarding_headers_are_ignored() {
        let key = ClientAddressing::default().client_key(
            ip("203.0.113.5"),
            Some("for=198.51.100.1"),
            Some("198.51.100.2"),
        );
        assert_eq!(key.as_deref(), Some("203.0.113.5"));
    }

    #[test]
    fn behind_trusted_proxies_the_chain_is_read_right_to_left() {
        let addressing = behind("10.0.0.0/8");
        // The client put a forged entry first; the proxy appended the real one.
        let key = addressing.client_key(ip("10.0.0.2"), None, Some("1.1.1.1, 198.51.100.7"));
        assert_eq!(key.as_deref(), Some("198.51.100.7"));
        // Two trusted hops are skipped.
        let key = addressing.client_key(
            ip("10.0.0.2"),
            None,
            Some("1.1.1.1, 198.51.100.7, 10.0.0.9"),
        );
        assert_eq!(key.as_deref(), Some("198.51.100.7"));
        // `Forwarded` wins over `X-Forwarded-For`, with ports and quoted IPv6.
        let key = addressing.client_key(
            ip("10.0.0.2"),
            Some(r#"for=1.1.1.1, for="[2001:db8:1:2::99]:4711";proto=https"#),
            Some("198.51.100.7"),
        );
        assert_eq!(key.as_deref(), Some("2001:db8:1:2::/64"));
        // Garbage stops the walk at the hop that sent it.
        let key = addressing.client_key(ip("10.0.0.2"), None, Some("198.51.100.7, garbage"));
        assert_eq!(key.as_deref(), Some("10.0.0.2"));
        // No header from a trusted proxy: the proxy itself.
        assert_eq!(
            addressing.client_key(ip("10.0.0.2"), None, None).as_deref(),
            Some("10.0.0.2")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_prefix() {
        let addressing = ClientAddressing::default();
        let a = addressing.client_key(ip("2001:db8:aa:bb:1::1"), None, None);
        let b = addressing.client_key(ip("2001:db8:aa:bb:ffff::2"), None, None);
        let other = addressing.client_key(ip("2001:db8:aa:bc::1"), None, None);
        assert_eq!(a, b, "one /64, one key");
        assert_ne!(a, other);
        assert_eq!(a.as_deref(), Some("2001:db8:aa:bb::/64"));
        let mapped = addressing.client_key(ip("::ffff:192.0.2.1"), None, None);
        assert_eq!(mapped.as_deref(), Some("192.0.2.1"));
        let wide =
            ClientAddressing::new(Vec::new(), 48).client_key(ip("2001:db8:aa:bb::1"), None, None);
        assert_eq!(wide.as_deref(), Some("2001:db8:aa::/48"));
    }
}
