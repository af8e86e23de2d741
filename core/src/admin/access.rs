//! Who may use the admin endpoint: pure checks of a request's `Host` and `Authorization`.
//!
//! The endpoint can revoke links and re-index channels, so two attacks matter. A web page
//! the operator opens can make the browser send requests to `127.0.0.1` under its own
//! domain name (DNS rebinding): refused because its `Host` is not a loopback name. A client
//! beyond loopback (when `TGCDN_ADMIN_LISTEN` is not loopback): refused without the bearer
//! token, which the configuration then requires. With a token configured, the token
//! authenticates and `Host` may be any name (operators reach a remote core by its name); a
//! rebinding page cannot know the token. Called by [`super`] before any route runs.

use hyper::StatusCode;
use tgcdn_shared::config::{FromSetting, Secret};

/// Why a request was refused; the message is the response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "Host {0:?} is not a loopback name (localhost, 127.0.0.1, [::1]); set TGCDN_ADMIN_TOKEN to reach the admin endpoint by another name"
    )]
    Host(String),
    #[error("no Host header")]
    NoHost,
    #[error("this admin endpoint requires Authorization: Bearer <TGCDN_ADMIN_TOKEN>")]
    MissingToken,
    #[error("wrong admin token")]
    WrongToken,
}

impl Denied {
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::Host(_) | Denied::NoHost => StatusCode::FORBIDDEN,
            Denied::MissingToken | Denied::WrongToken => StatusCode::UNAUTHORIZED,
        }
    }
}

/// The endpoint's access rule: a bearer token, or loopback names only.
#[derive(Debug, Clone, Default)]
pub struct AdminAccess {
    token: Option<Secret>,
}

impl AdminAccess {
    pub fn new(token: Option<Secret>) -> Self {
        AdminAccess { token }
    }

    /// Checks a request's `Host` and `Authorization` header values.
    pub fn check(&self, host: Option<&str>, authorization: Option<&str>) -> Result<(), Denied> {
        match &self.token {
            Some(token) => {
                let presented = authorization
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .ok_or(Denied::MissingToken)?;
                let presented = Secret::from_text(presented.trim()).ok_or(Denied::WrongToken)?;
                if constant_time_eq(presented.bytes(), token.bytes()) {
                    Ok(())
                } else {
                    Err(Denied::WrongToken)
                }
            }
            None => {
                let host = host.ok_or(Denied::NoHost)?;
                if is_loopback_host(host) {
                    Ok(())
                } else {
                    Err(Denied::Host(host.chars().take(100).collect()))
                }
            }
        }
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, each with an optional port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((inside, rest)) if rest.is_empty() || is_port(rest) => inside,
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if is_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        },
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn is_port(rest: &str) -> bool {
    rest.strip_prefix(':')
        .is_some_and(|port| !port.is_empty() && port.parse::<u16>().is_ok())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn without_a_token_only_loopback_hosts_pass() {
        let access = AdminAccess::new(None);
        for host in [
            "localhost",
            "LOCALHOST:9180",
            "127.0.0.1",
            "127.0.0.1:9180",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:9180",
        ] {
            assert_eq!(access.check(Some(host), None), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:9180",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:9180",
            "[::2]:9180",
            "[::1]x",
            "localhost:",
            "localhost:99999",
            "",
        ] {
            assert_eq!(
                access.check(Some(host), None),
                Err(Denied::Host(host.to_owned())),
                "{host}"
            );
        }
        assert_eq!(access.check(None, None), Err(Denied::NoHost));
        assert_eq!(Denied::NoHost.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn with_a_token_the_bearer_decides_whatever_the_host() {
        let access = AdminAccess::new(Secret::from_text(TOKEN));
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            access.check(Some("core.internal:9180"), Some(&bearer)),
            Ok(())
        );
        assert_eq!(
            access.check(Some("localhost"), None),
            Err(Denied::MissingToken)
        );
        assert_eq!(
            access.check(Some("localhost"), Some(TOKEN)),
            Err(Denied::MissingToken)
        );
        assert_eq!(
            access.check(
                Some("localhost"),
                Some("Bearer 00112233445566778899aabbccddeefe")
            ),
            Err(Denied::WrongToken)
        );
        assert_eq!(
            access.check(Some("localhost"), Some("Bearer nonsense")),
            Err(Denied::WrongToken)
        );
        assert_eq!(Denied::WrongToken.status(), StatusCode::UNAUTHORIZED);
    }
}
