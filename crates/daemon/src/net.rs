//! IP prefixes: what policy routing sends into the TUN and what the firewall protects.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address and a prefix length, normalised so the host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    /// The network address.
    pub addr: IpAddr,
    /// Bits of `addr` that name the network.
    pub prefix_len: u8,
}

/// Why a prefix did not parse or make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    /// Not `ADDRESS` or `ADDRESS/LEN`.
    #[error("`{0}` is not an IP address or ADDRESS/PREFIX_LENGTH")]
    Syntax(String),
    /// Longer than the address.
    #[error("prefix length {len} is longer than the {bits} bits of `{addr}`")]
    TooLong {
        /// The address given.
        addr: IpAddr,
        /// The length given.
        len: u8,
        /// The address's width.
        bits: u8,
    },
}

impl IpNet {
    /// The prefix of `addr` of `prefix_len` bits, host bits cleared.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<IpNet, IpNetError> {
        let bits = Self::width(addr);
        if prefix_len > bits {
            return Err(IpNetError::TooLong {
                addr,
                len: prefix_len,
                bits,
            });
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Ok(IpNet { addr, prefix_len })
    }

    /// One address.
    pub fn host(addr: IpAddr) -> IpNet {
        IpNet {
            addr,
            prefix_len: Self::width(addr),
        }
    }

    /// Whether `addr` is inside.
    pub fn contains(&self, addr: IpAddr) -> bool {
        IpNet::new(addr, self.prefix_len).is_ok_and(|n| n.addr == self.addr)
    }

    /// Whether this is an IPv6 prefix.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    fn width(addr: IpAddr) -> u8 {
        if addr.is_ipv4() { 32 } else { 128 }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<IpNet, IpNetError> {
        let syntax = || IpNetError::Syntax(s.to_owned());
        match s.split_once('/') {
            None => Ok(IpNet::host(s.parse().map_err(|_| syntax())?)),
            Some((a, l)) => IpNet::new(
                a.parse().map_err(|_| syntax())?,
                l.parse().map_err(|_| syntax())?,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_cleared_and_membership_follows() {
        let n: IpNet = "10.1.2.3/16".parse().expect("prefix");
        assert_eq!(n.to_string(), "10.1.0.0/16");
        assert!(n.contains("10.1.255.1".parse().expect("addr")));
        assert!(!n.contains("10.2.0.1".parse().expect("addr")));
        assert!(!n.contains("::1".parse().expect("addr")));
        let h: IpNet = "2001:db8::1".parse().expect("host");
        assert_eq!(h.prefix_len, 128);
        assert_eq!("0.0.0.0/0".parse::<IpNet>().expect("default").prefix_len, 0);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(matches!(
            "10.0.0.0/33".parse::<IpNet>(),
            Err(IpNetError::TooLong { len: 33, .. })
        ));
        assert!(matches!(
            "10.0.0/8".parse::<IpNet>(),
            Err(IpNetError::Syntax(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<IpNet>(),
            Err(IpNetError::Syntax(_))
        ));
    }
}
