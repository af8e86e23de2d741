//! The admin endpoint's access rule on a live core: bound beyond loopback, it answers only
//! a request carrying its bearer token (none or a wrong one is 401, whatever the `Host`);
//! the configuration refuses such a listener without a token. Requests go to 127.0.0.1 on
//! the port the wildcard listener took.

mod support;

use std::net::{Ipv4Addr, SocketAddr};

use support::{Deployment, bounded};
use tgcdn_core::config::Config;
use tgcdn_core::runtime::Running;
use tgcdn_shared::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "00112233445566778899aabbccddeeff00112233";

/// `GET path` with `Host` and an optional `Authorization`; the status answered.
async fn status(addr: SocketAddr, path: &str, host: &str, authorization: Option<&str>) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line")
}

#[tokio::test]
async fn an_admin_endpoint_beyond_loopback_answers_only_its_bearer_token() {
    bounded(async {
        let deployment = Deployment::start().await;
        let dir = tempfile::tempdir().unwrap();

        let mut env = deployment.env(dir.path());
        env.push(("TGCDN_ADMIN_LISTEN".into(), "0.0.0.0:0".into()));
        let settings = Settings::from_env_and_file(env, None).expect("settings");
        assert!(
            Config::from_settings(&settings).is_err(),
            "a wildcard admin listener without a token must be refused"
        );

        deployment.provision(dir.path()).await;
        let config = deployment.config(
            dir.path(),
            &[
                ("TGCDN_ADMIN_LISTEN", "0.0.0.0:0"),
                ("TGCDN_ADMIN_TOKEN", TOKEN),
            ],
        );
        let core = Running::start(&config).await.expect("core starts");
        let bound = core.admin_addr();
        assert!(bound.ip().is_unspecified(), "bound to {bound}");
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, bound.port()));

        let right = format!("Bearer {TOKEN}");
        let wrong = format!("Bearer {}", TOKEN.replace('0', "f"));
        for host in ["localhost", "cdn-core.example:9180"] {
            assert_eq!(
                status(admin, "/admin/report", host, None).await,
                401,
                "{host}"
            );
            assert_eq!(
                status(admin, "/admin/report", host, Some(&wrong)).await,
                401,
                "{host}"
            );
            assert_eq!(
                status(admin, "/admin/report", host, Some("Basic dXNlcjpwYXNz")).await,
                401,
                "{host}"
            );
            // The token authenticates: an operator may reach a remote core by its name.
            assert_eq!(
                status(admin, "/admin/report", host, Some(&right)).await,
                200,
                "{host}"
            );
        }
        // Counters only: probes and scrapers need no token.
        assert_eq!(status(admin, "/metrics", "localhost", None).await, 200);
        core.shutdown().await.expect("clean shutdown");
    })
    .await;
}
