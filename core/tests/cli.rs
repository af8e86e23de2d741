//! The `tgcdn-core` command line as an operator sees it: `check-config` and `--help` list
//! every row of the settings table, say where each value came from, mask secrets, and a bad
//! value fails with the variable's name and a non-zero exit.

use std::path::Path;
use std::process::{Command, Output};

use tgcdn_core::config::SETTINGS;
use tgcdn_shared::config::env_name;

fn example_file() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tgcdn-core.example.toml"
    ))
}

/// Runs the binary with only `env` set (no inherited TGCDN_* from the developer's shell).
fn core(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tgcdn-core"))
        .args(args)
        .env_clear()
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .output()
        .expect("tgcdn-core starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_lists_every_setting_with_its_source_and_masks_secrets() {
    let file = example_file().to_str().unwrap();
    let output = core(
        &["check-config"],
        &[("TGCDN_CONFIG", file), ("TGCDN_NEGATIVE_CACHE_SECS", "90")],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for setting in SETTINGS {
        let name = env_name(setting.key);
        assert!(
            stdout
                .lines()
                .any(|line| line.trim_start().starts_with(&name)),
            "{name} missing:\n{stdout}"
        );
    }
    let line = |name: &str| {
        stdout
            .lines()
            .find(|line| line.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"))
            .to_owned()
    };
    assert!(line("TGCDN_NEGATIVE_CACHE_SECS").ends_with("90  [environment]"));
    assert!(line("TGCDN_CHUNK_CACHE").ends_with(&format!("64MiB  [{file}]")));
    assert!(line("TGCDN_EDGE_RETENTION").ends_with("7d  [default]"));
    assert!(line("TGCDN_BOT_TOKEN").contains("(set, masked)"));
    for secret in [
        "AAmainbotsecret",
        "AAworkerone",
        "0123456789abcdef0123456789abcdef",
    ] {
        assert!(!stdout.contains(secret), "{secret} leaked:\n{stdout}");
    }
    assert!(line("bots (main first)").ends_with("111111, 222222, 333333"));
    assert!(stdout.ends_with("configuration is valid\n"), "{stdout}");
}

#[test]
fn check_config_names_the_bad_variable_and_fails() {
    let file = example_file().to_str().unwrap();
    let output = core(
        &["check-config"],
        &[("TGCDN_CONFIG", file), ("TGCDN_CHUNK_CACHE", "lots")],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("TGCDN_CHUNK_CACHE"), "{stderr}");
    assert!(!text(&output.stdout).contains("valid"));
}

#[test]
fn help_documents_every_setting_with_its_default() {
    let output = core(&["--help"], &[]);
    assert!(output.status.success());
    let stdout = text(&output.stdout);
    for setting in SETTINGS {
        assert!(
            stdout.contains(&env_name(setting.key)),
            "{} missing from --help",
            setting.key
        );
    }
    assert!(stdout.contains("check-config"), "{stdout}");
}
