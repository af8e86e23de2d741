//! Tests of the settings layer: each parser, precedence, and the error lines.

use super::*;

const FILE: &str = "/etc/tgcdn/edge.toml";

fn env(pairs: &[(&str, &str)]) -> Settings {
    Settings::from_env_and_file(
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        None,
    )
    .unwrap()
}

fn with_file(pairs: &[(&str, &str)], toml: &str) -> Settings {
    Settings::from_env_and_file(
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        Some((Path::new(FILE), toml)),
    )
    .unwrap()
}

fn parse<T: FromSetting>(text: &str) -> Option<T> {
    T::from_text(text)
}

fn error_line<T: FromSetting + fmt::Debug>(settings: &Settings, key: &str) -> String {
    settings.get::<T>(key).unwrap_err().to_string()
}

#[test]
fn env_names() {
    assert_eq!(env_name("cache_size"), "TGCDN_CACHE_SIZE");
    assert_eq!(env_name("quic.listen"), "TGCDN_QUIC_LISTEN");
}

#[test]
fn integers() {
    assert_eq!(parse::<u16>("8080"), Some(8080));
    assert_eq!(parse::<u16>(" 8080 "), Some(8080));
    assert_eq!(parse::<u16>("65536"), None);
    assert_eq!(parse::<u8>("-1"), None);
    assert_eq!(parse::<i64>("-1001234567890"), Some(-1_001_234_567_890));
    assert_eq!(parse::<i32>("12x"), None);
    assert_eq!(u8::from_toml(&toml::Value::Integer(300)), None);
    assert_eq!(u8::from_toml(&toml::Value::Integer(200)), Some(200));
    assert_eq!(u8::from_toml(&toml::Value::Boolean(true)), None);
}

#[test]
fn bools() {
    for yes in ["true", "TRUE", "1", "yes", "Yes", "on"] {
        assert_eq!(parse::<bool>(yes), Some(true), "{yes}");
    }
    for no in ["false", "0", "no", "NO", "off"] {
        assert_eq!(parse::<bool>(no), Some(false), "{no}");
    }
    assert_eq!(parse::<bool>("2"), None);
    assert_eq!(parse::<bool>(""), None);
    assert_eq!(bool::from_toml(&toml::Value::Boolean(true)), Some(true));
    assert_eq!(bool::from_toml(&toml::Value::Integer(1)), None);
}

#[test]
fn strings_and_paths() {
    assert_eq!(parse::<String>(" a b "), Some(" a b ".to_owned()));
    assert_eq!(String::from_toml(&toml::Value::Integer(1)), None);
    assert_eq!(
        parse::<PathBuf>("/var/lib/tgcdn"),
        Some(PathBuf::from("/var/lib/tgcdn"))
    );
    assert_eq!(parse::<PathBuf>(""), None);
}

#[test]
fn byte_sizes() {
    assert_eq!(parse::<ByteSize>("256MiB"), Some(ByteSize(256 << 20)));
    assert_eq!(parse::<ByteSize>("1GiB"), Some(ByteSize(1 << 30)));
    assert_eq!(parse::<ByteSize>("512k"), Some(ByteSize(512 << 10)));
    assert_eq!(parse::<ByteSize>("512 KiB"), Some(ByteSize(512 << 10)));
    assert_eq!(parse::<ByteSize>("2mb"), Some(ByteSize(2_000_000)));
    assert_eq!(parse::<ByteSize>("1048576"), Some(ByteSize(1 << 20)));
    assert_eq!(parse::<ByteSize>("7b"), Some(ByteSize(7)));
    for bad in [
        "lots",
        "",
        "MiB",
        "1.5GiB",
        "-1",
        "5 parsecs",
        "99999999999TiB",
    ] {
        assert_eq!(parse::<ByteSize>(bad), None, "{bad}");
    }
    assert_eq!(
        ByteSize::from_toml(&toml::Value::Integer(4096)),
        Some(ByteSize(4096))
    );
    assert_eq!(ByteSize::from_toml(&toml::Value::Integer(-1)), None);
}

#[test]
fn durations() {
    assert_eq!(parse::<Duration>("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse::<Duration>("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse::<Duration>("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse::<Duration>("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse::<Duration>("1d"), Some(Duration::from_secs(86_400)));
    for bad in ["5", "5 parsecs", "s", "1.5s", "-1s", ""] {
        assert_eq!(parse::<Duration>(bad), None, "{bad}");
    }
}

#[test]
fn socket_addresses() {
    assert_eq!(
        parse::<SocketAddr>("0.0.0.0:8080"),
        Some("0.0.0.0:8080".parse().unwrap())
    );
    assert_eq!(
        parse::<SocketAddr>("[::1]:443"),
        Some("[::1]:443".parse().unwrap())
    );
    assert_eq!(parse::<SocketAddr>("localhost:80"), None);
    assert_eq!(parse::<SocketAddr>("1.2.3.4"), None);
}

#[test]
fn base_urls() {
    for good in [
        "https://cdn.example.com",
        "http://127.0.0.1:8080",
        "https://x.org/tgcdn",
    ] {
        assert_eq!(
            parse::<BaseUrl>(good).map(|u| u.to_string()),
            Some(good.to_owned())
        );
    }
    for bad in [
        "https://cdn.example.com/",
        "ftp://x.org",
        "cdn.example.com",
        "https://",
        "https:///path",
        "https://x.org?a=1",
        "https://user@x.org",
        "https://x .org",
    ] {
        assert_eq!(parse::<BaseUrl>(bad), None, "{bad}");
    }
}

#[test]
fn secrets() {
    let hex = "00112233445566778899aabbccddeeff";
    assert_eq!(
        parse::<Secret>(hex).unwrap().bytes()[..3],
        [0x00, 0x11, 0x22]
    );
    assert_eq!(parse::<Secret>(hex).unwrap().bytes().len(), 16);
    // 16 bytes in standard base64, padded and not, and URL-safe.
    let bytes: Vec<u8> = (0xf0..=0xff).collect();
    for b64 in [
        "8PHy8/T19vf4+fr7/P3+/w==",
        "8PHy8/T19vf4+fr7/P3+/w",
        "8PHy8_T19vf4-fr7_P3-_w",
    ] {
        assert_eq!(parse::<Secret>(b64).unwrap().bytes(), &bytes[..], "{b64}");
    }
    // All hex digits reads as hex unless told otherwise.
    assert_eq!(
        parse::<Secret>(&format!("base64:{hex}"))
            .unwrap()
            .bytes()
            .len(),
        24
    );
    assert_eq!(
        parse::<Secret>(&format!("hex:{hex}"))
            .unwrap()
            .bytes()
            .len(),
        16
    );
    for bad in [
        "00112233",
        "too short",
        "not*base64*at*all*not*base64*at*all",
        "hex:zz",
        "8PHy8===",
    ] {
        assert_eq!(parse::<Secret>(bad), None, "{bad}");
    }
    assert_eq!(
        format!("{:?}", parse::<Secret>(hex).unwrap()),
        "Secret(16 bytes)"
    );
}

#[test]
fn lists() {
    assert_eq!(
        parse::<Vec<String>>("a,b"),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(
        parse::<Vec<String>>(" a , b ,, "),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(parse::<Vec<String>>(""), Some(vec![]));
    assert_eq!(parse::<Vec<i64>>("-1001,-1002"), Some(vec![-1001, -1002]));
    assert_eq!(parse::<Vec<i64>>("-1001,x"), None);
    let table: toml::Table = "a = [1, 2]\nb = ['x', 'y']\nc = [1, 'x']".parse().unwrap();
    assert_eq!(Vec::<i64>::from_toml(&table["a"]), Some(vec![1, 2]));
    assert_eq!(
        Vec::<String>::from_toml(&table["b"]),
        Some(vec!["x".to_owned(), "y".to_owned()])
    );
    assert_eq!(Vec::<i64>::from_toml(&table["c"]), None);
}

#[test]
fn environment_wins_over_the_file() {
    let toml = "cache_size = '1GiB'\nlisten = '0.0.0.0:1'\n[quic]\nlisten = '0.0.0.0:2'\n";
    let settings = with_file(&[("TGCDN_CACHE_SIZE", "64MiB"), ("PATH", "/bin")], toml);
    assert_eq!(
        settings.get::<ByteSize>("cache_size").unwrap(),
        Some(ByteSize(64 << 20))
    );
    assert_eq!(
        settings.get::<SocketAddr>("listen").unwrap(),
        Some("0.0.0.0:1".parse().unwrap())
    );
    assert_eq!(
        settings.get::<SocketAddr>("quic.listen").unwrap(),
        Some("0.0.0.0:2".parse().unwrap())
    );
    assert_eq!(settings.get::<String>("absent").unwrap(), None);
    assert_eq!(settings.get_or("absent", 7u32).unwrap(), 7);
    assert_eq!(
        settings.get_or("cache_size", ByteSize(1)).unwrap(),
        ByteSize(64 << 20)
    );
    // Variables without the prefix are ignored.
    assert_eq!(settings.get::<String>("path").unwrap(), None);
}

#[test]
fn error_line_for_an_environment_value() {
    let settings = env(&[("TGCDN_CACHE_SIZE", "lots")]);
    assert_eq!(
        error_line::<ByteSize>(&settings, "cache_size"),
        r#"TGCDN_CACHE_SIZE: expected a byte size such as 256MiB, got "lots""#
    );
    // get_or does not hide an invalid value behind the default.
    assert!(settings.get_or("cache_size", ByteSize(1)).is_err());
}

#[test]
fn error_line_for_a_file_value() {
    let settings = with_file(
        &[],
        "cache_size = 'lots'\nport = 70000\nworkers = [1, 'x']\n",
    );
    assert_eq!(
        error_line::<ByteSize>(&settings, "cache_size"),
        r#"cache_size in /etc/tgcdn/edge.toml: expected a byte size such as 256MiB, got "lots""#
    );
    assert_eq!(
        error_line::<u16>(&settings, "port"),
        "port in /etc/tgcdn/edge.toml: expected an integer from 0 to 65535, got 70000"
    );
    assert_eq!(
        error_line::<Vec<i64>>(&settings, "workers"),
        "workers in /etc/tgcdn/edge.toml: expected a comma-separated list of an integer from \
         -9223372036854775808 to 9223372036854775807, got [1, \"x\"]"
    );
}

#[test]
fn secrets_are_not_echoed_in_errors() {
    let settings = with_file(
        &[("TGCDN_LINK_SECRET", "hunter2")],
        "other_secret = 'hunter3'",
    );
    let line = error_line::<Secret>(&settings, "link_secret");
    assert_eq!(
        line,
        "TGCDN_LINK_SECRET: expected a secret of at least 16 bytes in hex or base64, \
         got 7 characters (value not shown)"
    );
    let line = error_line::<Secret>(&settings, "other_secret");
    assert!(
        !line.contains("hunter3") && line.starts_with("other_secret in "),
        "{line}"
    );
}

#[test]
fn missing_required_setting() {
    let settings = env(&[]);
    assert_eq!(
        settings
            .require::<String>("api_hash")
            .unwrap_err()
            .to_string(),
        "TGCDN_API_HASH: required setting is not set"
    );
    let settings = with_file(&[], "");
    assert_eq!(
        settings
            .require::<String>("api_hash")
            .unwrap_err()
            .to_string(),
        "TGCDN_API_HASH (or api_hash in /etc/tgcdn/edge.toml): required setting is not set"
    );
    let settings = with_file(&[], "api_hash = 'abc'");
    assert_eq!(settings.require::<String>("api_hash").unwrap(), "abc");
}

#[test]
fn file_syntax_error_is_one_line_with_position() {
    let err = Settings::from_env_and_file(
        Vec::<(String, String)>::new(),
        Some((Path::new(FILE), "a = 1\nb = = 2\n")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("/etc/tgcdn/edge.toml:2:"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn unknown_keys_are_reported() {
    let settings = with_file(
        &[
            ("TGCDN_CACHE_SIZE", "1"),
            ("TGCDN_CACHE_SIZ", "1"),
            ("TGCDN_CONFIG", FILE),
        ],
        "listen = '0.0.0.0:1'\nlisen = 1\n[quic]\nlisten = 'x'\ntypo = 2\n",
    );
    assert_eq!(
        settings.unknown_keys(&["cache_size", "listen", "quic.listen"]),
        vec![
            "TGCDN_CACHE_SIZ".to_owned(),
            "lisen in /etc/tgcdn/edge.toml".to_owned(),
            "quic.typo in /etc/tgcdn/edge.toml".to_owned(),
        ]
    );
}

const TABLE: &[SettingDoc] = &[
    SettingDoc {
        key: "cache_size",
        kind: "size",
        default: Some("256MiB"),
        help: "chunk cache | in bytes",
    },
    SettingDoc {
        key: "public_url",
        kind: "url",
        default: None,
        help: "base URL",
    },
    SettingDoc {
        key: "broken",
        kind: "size",
        default: Some("lots"),
        help: "a bug in a table",
    },
];

#[test]
fn a_tables_default_applies_only_when_the_setting_is_absent() {
    let none = Settings::from_env_and_file(Vec::<(String, String)>::new(), None).unwrap();
    assert_eq!(
        none.get_default::<ByteSize>(TABLE, "cache_size").unwrap(),
        ByteSize(256 << 20)
    );
    let set =
        Settings::from_env_and_file([("TGCDN_CACHE_SIZE".to_owned(), "1GiB".to_owned())], None)
            .unwrap();
    assert_eq!(
        set.get_default::<ByteSize>(TABLE, "cache_size").unwrap(),
        ByteSize(1 << 30)
    );
    // No default: required, and said so by name.
    let missing = none
        .get_default::<BaseUrl>(TABLE, "public_url")
        .unwrap_err();
    assert!(matches!(missing, ConfigError::Missing(_)), "{missing}");
    // A default that does not parse names the table, not the operator's input.
    let broken = none.get_default::<ByteSize>(TABLE, "broken").unwrap_err();
    assert!(
        broken
            .to_string()
            .starts_with("the settings table's default of broken: "),
        "{broken}"
    );
}

#[test]
fn help_and_reference_list_every_row_with_type_and_default() {
    let help = settings_help("intro", TABLE);
    assert!(help.starts_with("intro\n"), "{help}");
    assert!(
        help.contains(
            "TGCDN_CACHE_SIZE               <size> chunk cache | in bytes [default: 256MiB]"
        ),
        "{help}"
    );
    let markdown = reference_markdown("tgcdn-edge", "intro", TABLE);
    assert!(
        markdown.contains(
            "| `TGCDN_CACHE_SIZE` | `cache_size` | size | `256MiB` | chunk cache \\| in bytes |"
        ),
        "{markdown}"
    );
    assert!(markdown.contains("| `TGCDN_PUBLIC_URL` | `public_url` | url | — | base URL |"));
}

#[test]
fn check_config_lists_where_each_value_came_from_and_masks_secrets() {
    const ROWS: &[SettingDoc] = &[
        SettingDoc {
            key: "cache_size",
            kind: "size",
            default: Some("256MiB"),
            help: "",
        },
        SettingDoc {
            key: "listen",
            kind: "address",
            default: Some("0.0.0.0:8080"),
            help: "",
        },
        SettingDoc {
            key: "cluster_secret",
            kind: "secret",
            default: None,
            help: "",
        },
        SettingDoc {
            key: "link_keys",
            kind: "key list",
            default: None,
            help: "",
        },
        SettingDoc {
            key: "region",
            kind: "text",
            default: None,
            help: "",
        },
    ];
    let settings = with_file(
        &[
            ("TGCDN_CACHE_SIZE", "1GiB"),
            ("TGCDN_CLUSTER_SECRET", "s3cr3t-s3cr3t-s3cr3t"),
        ],
        "link_keys = \"1:abcdefabcdefabcdefabcdef\"\n",
    );
    let text = settings.describe(ROWS);
    assert!(
        text.contains("TGCDN_CACHE_SIZE               = 1GiB  [environment]"),
        "{text}"
    );
    assert!(
        text.contains("TGCDN_LISTEN                   = 0.0.0.0:8080  [default]"),
        "{text}"
    );
    assert!(
        text.contains("TGCDN_CLUSTER_SECRET           = (set, masked)  [environment]"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "TGCDN_LINK_KEYS                = (set, masked)  [{FILE}]"
        )),
        "{text}"
    );
    assert!(
        text.contains("TGCDN_REGION                   = (unset)"),
        "{text}"
    );
    assert!(
        !text.contains("s3cr3t") && !text.contains("abcdef"),
        "{text}"
    );
}
