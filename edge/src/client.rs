//! Who a client is, for every per-client limit: an IPv4 address, or an IPv6 /64.
//!
//! Used by the HTTP layer's request and connection limits ([`crate::http::limit`]) and by the
//! fetch slots ([`crate::slots`]). Pure; one host usually owns a whole /64, so counting its
//! addresses one by one would let it multiply every limit by 2^64.

use std::net::IpAddr;

/// The address a limit counts `ip` under: an IPv4 address as is (also when written as an
/// IPv4-mapped IPv6 address), an IPv6 address as its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = v6.to_bits() & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from_bits(prefix))
            }
        },
    }
}
