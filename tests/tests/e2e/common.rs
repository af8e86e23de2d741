//! What the e2e modules share: the stack started once, tool checks, file helpers.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use tgcdn_tests::{PostedFile, Stack, StackOptions, sha256_hex};

pub const MIB: u64 = 1 << 20;

/// The stack shared by every module that does not kill anything: two worker bots, so
/// downloads spread over three bots. Started on first use; never dropped (its children die
/// with the process, see `stack`).
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        Stack::start(StackOptions {
            workers: 2,
            ..StackOptions::default()
        })
        .unwrap_or_else(|error| panic!("the shared stack did not start: {error}"))
    })
}

/// Whether `tool` can run. Missing is fatal under CI, where `.ci/run` installs it, and a
/// printed skip elsewhere.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .or_else(|_| Command::new(tool).arg("-version").output())
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

/// Runs a command under a deadline (killed past it); returns its output.
pub fn run(command: &mut Command, timeout: Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let described = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {described}: {e}"));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{described} took longer than {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Asserts the command succeeded, showing its stderr if not.
pub fn check(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// SHA-256 of the whole document as the emulator serves it.
pub fn expected_sha(stack: &Stack, posted: &PostedFile) -> String {
    sha256_hex(
        &stack
            .emulator()
            .content_slice(posted.doc.id, 0, posted.doc.size as usize),
    )
}

pub fn file_sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The value of one sample of the edge's `/metrics`, e.g.
/// `tgcdn_edge_http_requests_total{status="206"}`; 0 when absent.
pub fn metric(stack: &Stack, sample: &str) -> f64 {
    stack
        .edge_metrics()
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}
