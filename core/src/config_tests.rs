//! Tests of the core's configuration: the shipped example file, environment over file,
//! required values, values that must go together, and masking.

use std::path::Path;

use super::*;

const EXAMPLE: &str = include_str!("../tgcdn-core.example.toml");

fn from(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let settings =
        Settings::from_env_and_file(env, file.map(|text| (Path::new("core.toml"), text)))?;
    Config::from_settings(&settings)
}

fn message(result: Result<Config, ConfigError>) -> String {
    match result {
        Ok(_) => panic!("expected a configuration error"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn the_example_file_is_valid_and_has_no_unknown_keys() {
    let settings =
        Settings::from_env_and_file(Vec::new(), Some((Path::new("example.toml"), EXAMPLE)))
            .unwrap();
    assert_eq!(Config::unknown_keys(&settings), Vec::<String>::new());
    let config = Config::from_settings(&settings).unwrap();
    assert_eq!(config.bot_tokens.len(), 3);
    assert_eq!(config.storage_channel, -1_001_234_567_890);
    assert_eq!(config.quic.listen.port(), 4433);
    assert_eq!(config.link_key_ids, vec![2, 1]);
    assert_eq!(config.keyring.current_key_id(), 2);
    assert_eq!(config.chunk_cache_bytes, 64 << 20);
    assert_eq!(config.quic.socket_buffer_bytes, 8 << 20);
    assert_eq!(config.quic.admission.max_unauthenticated, 64);
    assert_eq!(config.quic.admission.handshake_burst, 100);
    assert!(config.tls_pem.is_none());
    assert_eq!(config.bot_configs()[1].connections, 2);
    // Every documented key is in the example (commented-out ones included).
    for key in SETTINGS.iter().map(|setting| setting.key) {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            EXAMPLE.contains(&format!("{leaf} =")),
            "{key} missing from the example"
        );
    }
}

#[test]
fn describe_masks_every_secret() {
    let config = from(&[], Some(EXAMPLE)).unwrap();
    let text = format!("{}{config:?}", config.describe());
    for secret in [
        "AAmainbotsecret",
        "AAworkerone",
        "0123456789abcdef0123456789abcdef",
        "8c1f6a3a5e0f",
        "5b0e7d3c9a1f",
        "a4f1c2e3b5d6",
    ] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    // Every setting is listed with where its value came from; the public parts of the
    // secrets (bot ids, key ids) are in the derived lines.
    assert!(
        text.contains("TGCDN_BOT_TOKEN                = (set, masked)  [core.toml]"),
        "{text}"
    );
    assert!(
        text.contains("TGCDN_QUIC_LISTEN              = 0.0.0.0:4433  [core.toml]"),
        "{text}"
    );
    assert!(
        text.contains("TGCDN_CHUNK_CACHE              = 64MiB  [core.toml]"),
        "{text}"
    );
    assert!(
        text.contains("bots (main first)              = 111111, "),
        "{text}"
    );
    assert!(
        text.contains("link key ids (current first)   = 2, 1"),
        "{text}"
    );
    for setting in SETTINGS {
        assert!(
            text.contains(&env_name(setting.key)),
            "{} missing",
            setting.key
        );
    }
}

#[test]
fn the_environment_wins_over_the_file() {
    let config = from(
        &[
            ("TGCDN_QUIC_LISTEN", "127.0.0.1:9000"),
            ("TGCDN_WORKER_TOKENS", ""),
            ("TGCDN_DC_ADDRS", "1=127.0.0.1:4001, 2=127.0.0.1:4002"),
            ("TGCDN_DC_AUTH_KEY", &"ab".repeat(256)),
        ],
        Some(EXAMPLE),
    )
    .unwrap();
    assert_eq!(config.quic.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(config.bot_tokens.len(), 1);
    assert_eq!(config.dc_addrs.len(), 2);
    assert_eq!(config.dc_addrs[1].dc, 2);
    assert_eq!(config.dc_auth_key, Some([0xab; 256]));
}

#[test]
fn required_values_are_named_by_their_variable() {
    let text = message(from(&[], None));
    assert!(text.contains("TGCDN_API_ID"), "{text}");
    let mut env = vec![("TGCDN_API_ID", "5"), ("TGCDN_API_HASH", "x")];
    assert!(message(from(&env, None)).contains("TGCDN_BOT_TOKEN"));
    env.push(("TGCDN_BOT_TOKEN", "1:a"));
    assert!(message(from(&env, None)).contains("TGCDN_STORAGE_CHANNEL"));
}

#[test]
fn values_that_do_not_fit_together_are_refused() {
    let cases: [(&[(&str, &str)], &str); 8] = [
        (
            &[("TGCDN_QUIC_HANDSHAKES_PER_SEC", "0")],
            "TGCDN_QUIC_HANDSHAKES_PER_SEC",
        ),
        (&[("TGCDN_QUIC_CERT_FILE", "/c.pem")], "TGCDN_QUIC_KEY_FILE"),
        (
            &[("TGCDN_WORKER_TOKENS", "111111:other")],
            "configured twice",
        ),
        (
            &[("TGCDN_WORKER_TOKENS", "not-a-token")],
            "TGCDN_WORKER_TOKENS",
        ),
        (
            &[("TGCDN_STORAGE_CHANNEL", "12345")],
            "TGCDN_STORAGE_CHANNEL",
        ),
        (
            &[("TGCDN_CONNECTIONS_PER_BOT", "0")],
            "TGCDN_CONNECTIONS_PER_BOT",
        ),
        (&[("TGCDN_DC_AUTH_KEY", &"ab".repeat(256))], "dc_addrs"),
        (
            &[("TGCDN_OLD_LINK_KEYS", "2:00112233445566778899aabbccddeeff")],
            "twice",
        ),
    ];
    for (env, expected) in cases {
        let text = message(from(env, Some(EXAMPLE)));
        assert!(text.contains(expected), "{env:?}: {text}");
    }
    let short_key = [
        ("TGCDN_DC_ADDRS", "2=127.0.0.1:1"),
        ("TGCDN_DC_AUTH_KEY", "00112233445566778899aabbccddeeff"),
    ];
    assert!(message(from(&short_key, Some(EXAMPLE))).contains("256 bytes"));
}

#[test]
fn catalogue_channels_are_channel_ids_listed_once_and_batches_fit_telegram() {
    let config = from(
        &[
            ("TGCDN_CATALOG_CHANNELS", "-1001111111111,-1002222222222"),
            ("TGCDN_CATALOG_BACKFILL_PAUSE", "2s"),
        ],
        Some(EXAMPLE),
    )
    .unwrap();
    assert_eq!(
        config.catalog.channels,
        [-1_001_111_111_111, -1_002_222_222_222]
    );
    assert_eq!(config.catalog.backfill.pause, Duration::from_secs(2));
    assert_eq!(config.catalog.backfill.batch, 200);
    assert!(
        from(&[], Some(EXAMPLE))
            .unwrap()
            .catalog
            .channels
            .is_empty()
    );
    let text = message(from(&[("TGCDN_CATALOG_CHANNELS", "12345")], Some(EXAMPLE)));
    assert!(
        text.contains("TGCDN_CATALOG_CHANNELS") && text.contains("-100"),
        "{text}"
    );
    let twice = [("TGCDN_CATALOG_CHANNELS", "-1001111111111,-1001111111111")];
    assert!(message(from(&twice, Some(EXAMPLE))).contains("twice"));
    for batch in ["0", "201"] {
        let text = message(from(
            &[("TGCDN_CATALOG_BACKFILL_BATCH", batch)],
            Some(EXAMPLE),
        ));
        assert!(text.contains("TGCDN_CATALOG_BACKFILL_BATCH"), "{text}");
    }
}

#[test]
fn bad_values_do_not_echo_secrets() {
    let text = message(from(&[("TGCDN_LINK_KEY", "7:tooshort")], Some(EXAMPLE)));
    assert!(text.contains("TGCDN_LINK_KEY"), "{text}");
    assert!(!text.contains("tooshort"), "{text}");
}

#[test]
fn help_lists_every_variable() {
    let help = help_text();
    for setting in SETTINGS {
        assert!(help.contains(&env_name(setting.key)), "{}", setting.key);
    }
}

/// docs/CONFIG.md is generated from the settings tables: this fails while the committed file
/// differs from them, and rewrites it when `UPDATE_CONFIG_REFERENCE` is set.
#[test]
fn config_reference_matches_the_settings_tables() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFIG.md");
    let generated = reference_markdown();
    if std::env::var_os("UPDATE_CONFIG_REFERENCE").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/CONFIG.md differs from the settings tables: \
         UPDATE_CONFIG_REFERENCE=1 cargo test -p tgcdn-core --lib config_reference"
    );
}

#[test]
fn an_admin_endpoint_beyond_loopback_needs_a_token_and_the_token_stays_masked() {
    let open = message(from(
        &[("TGCDN_ADMIN_LISTEN", "0.0.0.0:9180")],
        Some(EXAMPLE),
    ));
    assert!(open.contains("TGCDN_ADMIN_TOKEN"), "{open}");
    let token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let config = from(
        &[
            ("TGCDN_ADMIN_LISTEN", "0.0.0.0:9180"),
            ("TGCDN_ADMIN_TOKEN", token),
            ("TGCDN_EDGE_RETENTION", "2d"),
            ("TGCDN_LINK_EXPIRY", "30d"),
        ],
        Some(EXAMPLE),
    )
    .unwrap();
    assert!(config.admin_token.is_some());
    assert_eq!(config.edge_retention.as_secs(), 2 * 86_400);
    assert_eq!(config.link_expiry.map(|d| d.as_secs()), Some(30 * 86_400));
    let text = config.describe();
    assert!(!text.contains(token), "{text}");
    assert!(
        text.contains("TGCDN_ADMIN_TOKEN              = (set, masked)  [environment]"),
        "{text}"
    );
    let short = message(from(&[("TGCDN_LINK_EXPIRY", "5s")], Some(EXAMPLE)));
    assert!(short.contains("TGCDN_LINK_EXPIRY"), "{short}");
    // Loopback needs no token, and the defaults hold.
    let config = from(&[], Some(EXAMPLE)).unwrap();
    assert!(config.admin_token.is_none());
    assert_eq!(config.edge_retention.as_secs(), 7 * 86_400);
    assert_eq!(config.link_expiry, None);
}

/// The table's default for `key`, parsed as the reader parses it.
fn table_default<T: FromSetting>(key: &str) -> T {
    let settings = Settings::from_env_and_file(Vec::new(), None).unwrap();
    settings.get_default(SETTINGS, key).unwrap()
}

#[test]
fn the_structs_built_without_a_configuration_default_to_the_table() {
    // Tests, benches and the sandbox build these structs from `Default`; the table is what
    // operators read (`--help`, docs/CONFIG.md), so the two must say the same.
    let quic = QuicConfig::default();
    assert_eq!(quic.listen, table_default::<SocketAddr>("quic.listen"));
    assert_eq!(
        quic.socket_buffer_bytes as u64,
        table_default::<ByteSize>("quic.socket_buffer").0
    );
    let admission = AdmissionLimits::default();
    assert_eq!(
        admission.max_unauthenticated,
        table_default::<usize>("quic.max_unauthenticated")
    );
    assert_eq!(
        admission.handshakes_per_sec,
        table_default::<u32>("quic.handshakes_per_sec")
    );
    assert_eq!(
        admission.handshake_burst,
        table_default::<u32>("quic.handshake_burst")
    );
    let fetch = FetchConfig::default();
    assert_eq!(
        fetch.cache_bytes,
        table_default::<ByteSize>("chunk_cache").0
    );
    assert_eq!(
        fetch.parts_per_connection,
        table_default::<usize>("parts_per_connection")
    );
    assert_eq!(
        fetch.demand_first,
        table_default::<bool>("fetch_demand_first")
    );
    assert_eq!(
        ResolveConfig::default().negative_ttl,
        Duration::from_secs(table_default::<u64>("negative_cache_secs"))
    );
    let backfill = BackfillConfig::default();
    assert_eq!(
        backfill.batch,
        table_default::<usize>("catalog_backfill_batch")
    );
    assert_eq!(
        backfill.pause,
        table_default::<Duration>("catalog_backfill_pause")
    );
    let tmdb = TmdbSettings::default();
    assert_eq!(
        tmdb.api_url,
        table_default::<BaseUrl>("tmdb_url")
            .as_str()
            .trim_end_matches('/')
    );
    assert_eq!(
        tmdb.image_url,
        table_default::<BaseUrl>("tmdb_image_url")
            .as_str()
            .trim_end_matches('/')
    );
    assert_eq!(tmdb.language, table_default::<String>("tmdb_language"));
}
