//! The processes around the benches: nginx as the file-server baseline, the real
//! `tgcdn-edge` binary, the load tools (curl for single full GETs, wrk for many small
//! ranges), and a process's resident memory from `/proc`.
//!
//! Called by the cache-hit and memory benches. Every child is killed when its handle drops;
//! every wait is bounded. A missing tool is an error naming the tool, so a bench can print
//! "skipped" instead of a wrong figure (`bench/run` installs them).

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::process::{Child, Command};

/// A free loopback port (bound, then released: the child binds it right after).
pub fn free_port() -> Result<SocketAddr> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Waits until something accepts TCP connections on `addr`.
pub async fn wait_listening(addr: SocketAddr, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("nothing listens on {addr} after {within:?}")
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// nginx serving one directory with sendfile on, as a child process.
pub struct Nginx {
    pub addr: SocketAddr,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Serves `file_name` holding `bytes` at `/{file_name}`; reads it once so the page cache
    /// is warm.
    pub async fn start(file_name: &str, bytes: &[u8]) -> Result<Nginx> {
        use std::os::unix::fs::PermissionsExt;
        if !have("nginx") {
            bail!("nginx is not installed (bash bench/run installs it)");
        }
        let dir = tempfile::tempdir()?;
        let www = dir.path().join("www");
        std::fs::create_dir(&www)?;
        let file = www.join(file_name);
        std::fs::write(&file, bytes)?;
        // nginx workers drop root for `nobody`: they must be able to read the file.
        for path in [dir.path(), www.as_path()] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
        let _ = std::fs::read(&file)?;
        let addr = free_port()?;
        let prefix = dir.path().display();
        let conf = format!(
            "daemon off;\nworker_processes 2;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n  \
             keepalive_requests 1000000;\n  \
             server {{ listen {addr}; root {}; location / {{ }} }}\n}}\n",
            www.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nginx")?;
        wait_listening(addr, Duration::from_secs(10)).await?;
        Ok(Nginx {
            addr,
            _child: child,
            _dir: dir,
        })
    }
}

/// `curl` downloading `url` to /dev/null; bytes per second as curl measured it.
pub async fn curl_speed(url: &str) -> Result<f64> {
    let output = Command::new("curl")
        .args([
            "-s",
            "-f",
            "-o",
            "/dev/null",
            "-w",
            "%{speed_download}",
            url,
        ])
        .output()
        .await
        .context("running curl")?;
    if !output.status.success() {
        bail!("curl {url} failed: {:?}", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse::<f64>()
        .with_context(|| format!("curl printed {text:?}"))
}

/// `wrk` requesting random aligned `range_len` ranges of a `size`-byte file at `url` over
/// `connections` keep-alive connections for `seconds`; requests per second.
pub async fn wrk_ranges(
    url: &str,
    size: u64,
    range_len: u64,
    connections: usize,
    seconds: u64,
) -> Result<f64> {
    if !have("wrk") {
        bail!("wrk is not installed (bash bench/run installs it)");
    }
    let script = tempfile::Builder::new().suffix(".lua").tempfile()?;
    let slots = size / range_len;
    std::fs::write(
        script.path(),
        format!(
            "math.randomseed(42)\n\
             request = function()\n  local s = math.random(0, {}) * {range_len}\n  \
             return wrk.format(\"GET\", nil, {{[\"Range\"] = \"bytes=\" .. s .. \"-\" .. (s + {})}})\nend\n",
            slots - 1,
            range_len - 1
        ),
    )?;
    let output = Command::new("wrk")
        .arg("-t2")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(script.path())
        .arg(url)
        .output()
        .await
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") {
        bail!("wrk saw error statuses:\n{text}");
    }
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow!("no Requests/sec in wrk output:\n{text}"))
}

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .context("no VmRSS line")?;
    Ok(kib * 1024)
}

/// The release `tgcdn-edge` binary: `$TGCDN_EDGE_BIN`, else `target/release/tgcdn-edge` of
/// this workspace (`bench/run` builds it).
pub fn edge_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("TGCDN_EDGE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("release/tgcdn-edge");
    if !path.exists() {
        bail!(
            "{} is missing: cargo build --release -p tgcdn-edge",
            path.display()
        );
    }
    Ok(path)
}

/// The real edge binary as a child process.
pub struct EdgeProcess {
    pub addr: SocketAddr,
    /// The metrics listener (`TGCDN_METRICS_LISTEN`); `/metrics` is not on `addr`.
    pub metrics_addr: SocketAddr,
    child: Child,
}

impl EdgeProcess {
    /// Starts `tgcdn-edge` against the core at `core_addr`; `extra` are more `TGCDN_*`
    /// settings (cache size, limits). Returns once it accepts connections.
    pub async fn start(
        core_addr: SocketAddr,
        fingerprint: &str,
        extra: &[(&str, String)],
    ) -> Result<EdgeProcess> {
        let addr = free_port()?;
        let metrics_addr = free_port()?;
        let mut command = Command::new(edge_binary()?);
        command
            .env_clear()
            .env("RUST_LOG", "warn")
            .env("TGCDN_LISTEN", addr.to_string())
            .env("TGCDN_METRICS_LISTEN", metrics_addr.to_string())
            .env("TGCDN_PUBLIC_URL", format!("http://{addr}"))
            .env("TGCDN_CORE_ADDR", core_addr.to_string())
            .env("TGCDN_CORE_CERT_SHA256", fingerprint)
            .env(
                "TGCDN_CLUSTER_SECRET",
                crate::chain::hex(crate::chain::CLUSTER_SECRET),
            )
            .env(
                "TGCDN_LINK_KEYS",
                format!("1:{}", crate::chain::hex(crate::chain::LINK_SECRET)),
            );
        for (key, value) in extra {
            command.env(key, value);
        }
        let child = command
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting tgcdn-edge")?;
        wait_listening(addr, Duration::from_secs(10)).await?;
        Ok(EdgeProcess {
            addr,
            metrics_addr,
            child,
        })
    }

    pub fn pid(&self) -> Result<u32> {
        self.child.id().context("the edge exited")
    }

    /// The edge's `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(self.metrics_addr).await?;
        socket
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .await?;
        let mut text = String::new();
        tokio::time::timeout(Duration::from_secs(10), socket.read_to_string(&mut text))
            .await
            .context("metrics timed out")??;
        Ok(text)
    }
}

/// The value of the first metric line starting with `name` (a Prometheus text sample).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.starts_with(name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines() {
        let text = "# HELP x\nfoo_total 3\nbar{a=\"b\"} 2.5\n";
        assert_eq!(metric(text, "foo_total"), Some(3.0));
        assert_eq!(metric(text, "bar"), Some(2.5));
        assert_eq!(metric(text, "baz"), None);
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }
}
