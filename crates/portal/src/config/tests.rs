//! The configuration read from variables, and the portal built from it (on temporary
//! files).

use super::*;

#[test]
fn defaults_and_variables() {
    let config = PortalConfig::from_lookup(|_| None).unwrap();
    assert_eq!(config.bind, "127.0.0.1:3000");
    assert_eq!(config.base_url, "http://127.0.0.1:3000");
    assert_eq!(config.outbox_dir, PathBuf::from("./outbox"));
    assert_eq!(config.hash_params, HashParams::default());
    assert_eq!(
        config.storage,
        Storage::Sqlite(PathBuf::from("./resident-auth.db"))
    );
    assert_eq!(
        config.storage.key_file(),
        Some(PathBuf::from("./resident-auth.db.mail-queue-key"))
    );
    assert!(!config.secure_cookies());
    let storage = |variables: &[(&str, &str)]| {
        let variables: Vec<(String, String)> = variables
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        PortalConfig::from_lookup(|name| {
            variables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
        .map(|config| config.storage)
    };
    assert_eq!(storage(&[("STORAGE", "memory")]).unwrap(), Storage::Memory);
    assert_eq!(
        storage(&[("SQLITE_PATH", "/var/lib/portal/residents.db")]).unwrap(),
        Storage::Sqlite(PathBuf::from("/var/lib/portal/residents.db"))
    );
    let postgres = [
        ("DATABASE_URL", "postgres://portal@127.0.0.1/portal"),
        ("MAIL_QUEUE_KEY", KEY),
        ("SMTP_URL", "smtp://127.0.0.1:2525?tls=none"),
    ];
    assert!(matches!(storage(&postgres).unwrap(), Storage::Postgres(_)));
    let mut conflicting = postgres.to_vec();
    conflicting.push(("STORAGE", "memory"));
    assert!(storage(&conflicting).is_err());
    assert!(storage(&[("STORAGE", "redis")]).is_err());
    let config = PortalConfig::from_lookup(|name| match name {
        "BIND" => Some("0.0.0.0:8080".into()),
        "BASE_URL" => Some("https://кабинет-жителя.рф".into()),
        "SERVED_REGIONS" => Some("78,47".into()),
        _ => None,
    })
    .unwrap();
    assert!(config.secure_cookies());
    assert!(config
        .served_regions
        .serves(&"4700000000005".parse().unwrap()));
    assert!(!config
        .served_regions
        .serves(&"7700000000005".parse().unwrap()));
    assert!(PortalConfig::from_lookup(|n| (n == "SERVED_REGIONS").then(|| "spb".into())).is_err());
}

const KEY: &str = "W+GnW7ovu4+pLcpFJ0PaV7gPF+26mTSjS/eVsQfLjUM=";

#[test]
fn a_database_without_smtp_needs_an_outbox_chosen_on_purpose() {
    let error = PortalConfig::from_lookup(|name| match name {
        "DATABASE_URL" => Some("postgres://portal@127.0.0.1/portal".into()),
        "MAIL_QUEUE_KEY" => Some(KEY.into()),
        _ => None,
    })
    .unwrap_err();
    assert!(error.to_string().contains("OUTBOX_DIR"), "{error}");
    for extra in ["SMTP_URL", "OUTBOX_DIR"] {
        let config = PortalConfig::from_lookup(|name| match name {
            "DATABASE_URL" => Some("postgres://portal@127.0.0.1/portal".into()),
            "MAIL_QUEUE_KEY" => Some(KEY.into()),
            n if n == extra => Some("smtp://127.0.0.1:2525?tls=none".into()),
            _ => None,
        });
        assert!(config.is_ok(), "{extra}");
    }
}

/// Queued letters on a database are sealed with a key every instance shares: without
/// one (or with a malformed one) the portal refuses to start and says how to make one.
#[test]
fn a_database_needs_a_mail_queue_key_and_says_how_to_make_one() {
    let with = |key: Option<&str>, old: Option<&str>| {
        PortalConfig::from_lookup(|name| match name {
            "DATABASE_URL" => Some("postgres://portal@127.0.0.1/portal".into()),
            "SMTP_URL" => Some("smtp://127.0.0.1:2525?tls=none".into()),
            "MAIL_QUEUE_KEY" => key.map(str::to_owned),
            "MAIL_QUEUE_OLD_KEY" => old.map(str::to_owned),
            _ => None,
        })
    };
    let error = with(None, None).unwrap_err().to_string();
    assert!(error.contains("MAIL_QUEUE_KEY") && error.contains("openssl rand -base64 32"));
    let error = with(Some("c2hvcnQ="), None).unwrap_err().to_string();
    assert!(error.contains("32 bytes in base64"), "{error}");
    // 32 zero bytes started the portal before (docs/security.md: weak mail queue keys).
    let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for (key, old) in [(Some(zeros), None), (Some(KEY), Some(zeros))] {
        let error = with(key, old).unwrap_err().to_string();
        assert!(
            error.contains("not random") && error.contains("openssl rand -base64 32"),
            "{error}"
        );
    }
    assert!(with(None, Some(KEY)).is_err(), "an old key alone");
    assert!(with(Some(KEY), Some(KEY))
        .unwrap()
        .mail_queue_keys
        .is_some());
    // Without DATABASE_URL none is asked for: SQLite keeps one in a file beside the
    // database (made at the first build), memory makes a random one.
    let config = PortalConfig::from_lookup(|_| None).unwrap();
    assert!(config.mail_queue_keys.is_none());
}

#[test]
fn link_templates_are_read_and_refused_with_their_code() {
    let config = PortalConfig::from_lookup(|name| match name {
        "CONFIRMATION_LINK" => Some("https://app.example.org/confirm/{token}".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        config
            .link_templates
            .confirmation
            .map(|t| t.to_string())
            .as_deref(),
        Some("https://app.example.org/confirm/{token}")
    );
    assert!(config.link_templates.recovery.is_none());
    let error = PortalConfig::from_lookup(|name| {
        (name == "RECOVERY_LINK").then(|| "https://app.example.org/reset".into())
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("RECOVERY_LINK") && error.contains("link_template.placeholder"),
        "{error}"
    );
}

#[test]
fn trusted_proxies_and_the_ipv6_prefix() {
    let config = PortalConfig::from_lookup(|name| match name {
        "TRUSTED_PROXIES" => Some("10.0.0.0/8, ::1".into()),
        "CLIENT_IPV6_PREFIX" => Some("56".into()),
        _ => None,
    })
    .unwrap();
    let key = config.client_addressing.client_key(
        Some("10.1.1.1".parse().unwrap()),
        None,
        Some("2001:db8:aa:bbcc::1"),
    );
    assert_eq!(key.as_deref(), Some("2001:db8:aa:bb00::/56"));
    for (name, value) in [
        ("TRUSTED_PROXIES", "10.0.0.0/40"),
        ("CLIENT_IPV6_PREFIX", "0"),
    ] {
        assert!(
            PortalConfig::from_lookup(|n| (n == name).then(|| value.into())).is_err(),
            "{name}={value}"
        );
    }
}

#[test]
fn the_demo_directory_parses() {
    assert_eq!(MemoryDirectory::from_csv(DEMO_DIRECTORY).unwrap().len(), 5);
}

/// The default: a SQLite file that keeps residents, and a mail queue key made once
/// beside it (owner-only) and read at every later start.
#[tokio::test]
async fn builds_the_embedded_default_on_a_sqlite_file_with_its_key_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("residents.db");
    let variables = |name: &str| match name {
        "OUTBOX_DIR" => Some(dir.path().join("outbox").display().to_string()),
        "SQLITE_PATH" => Some(database.display().to_string()),
        "ARGON2_TEST_PARAMS" => Some("1".into()),
        _ => None,
    };
    let config = PortalConfig::from_lookup(variables).unwrap();
    let portal = build(&config).await.unwrap();
    let banner = portal.banner.join("\n");
    assert!(banner.contains("SQLite file"), "{banner}");
    assert!(
        banner.contains("imported into the database (5 new"),
        "{banner}"
    );
    assert!(banner.contains("mail-queue-key (made now"), "{banner}");
    let core = format!("on the {} core", Argon2Hasher::core());
    assert!(banner.contains(&core), "the banner names the argon2 core");
    assert!(banner.contains(".eml"), "{banner}");
    let key_file = config.storage.key_file().unwrap();
    let key = std::fs::read_to_string(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key_file), 0o600);
        assert_eq!(mode(&database), 0o600);
    }
    drop(portal);
    // A restart reads the same key and leaves the directory as it is.
    let portal = build(&config).await.unwrap();
    let banner = portal.banner.join("\n");
    assert!(banner.contains("mail-queue-key (read"), "{banner}");
    assert!(!banner.contains("imported"), "{banner}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    drop(portal);
    // A key file others may read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = build(&config).await.unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        build(&config).await.unwrap();
    }
}

/// As ssh does with its keys: a key file that is a symbolic link, or that another
/// user owns, is refused (it was accepted before); so are a database file and an
/// outbox that other users may read (the database was used silently before).
#[cfg(unix)]
#[tokio::test]
async fn files_others_may_read_or_replace_are_refused_with_the_way_out() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("residents.db");
    let outbox = dir.path().join("outbox");
    let variables = |name: &str| match name {
        "OUTBOX_DIR" => Some(outbox.display().to_string()),
        "SQLITE_PATH" => Some(database.display().to_string()),
        "ARGON2_TEST_PARAMS" => Some("1".into()),
        _ => None,
    };
    let config = PortalConfig::from_lookup(variables).unwrap();
    drop(build(&config).await.unwrap());
    let key_file = config.storage.key_file().unwrap();

    // A symbolic link to a private key file elsewhere.
    let elsewhere = dir.path().join("elsewhere-key");
    std::fs::rename(&key_file, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &key_file).unwrap();
    let error = build(&config).await.unwrap_err().to_string();
    assert!(error.contains("symbolic link"), "{error}");
    std::fs::remove_file(&key_file).unwrap();
    std::fs::rename(&elsewhere, &key_file).unwrap();
    drop(build(&config).await.unwrap());

    // Another user's file (only root can hand a file over to test it).
    if std::os::unix::fs::chown(&key_file, Some(65534), None).is_ok() {
        let error = build(&config).await.unwrap_err().to_string();
        assert!(error.contains("belongs to user 65534"), "{error}");
        std::os::unix::fs::chown(&key_file, Some(rustix::process::geteuid().as_raw()), None)
            .unwrap();
    }

    // A database restored with the default umask.
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = build(&config).await.unwrap_err().to_string();
    assert!(error.contains("chmod 600"), "{error}");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o600)).unwrap();

    // An outbox others may enter.
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o755)).unwrap();
    let error = build(&config).await.unwrap_err().to_string();
    assert!(error.contains("chmod 700"), "{error}");
    std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o700)).unwrap();
    build(&config).await.unwrap();
}

#[tokio::test]
async fn builds_in_memory_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let config = PortalConfig::from_lookup(|name| match name {
        "OUTBOX_DIR" => Some(dir.path().join("outbox").display().to_string()),
        "STORAGE" => Some("memory".into()),
        "ARGON2_TEST_PARAMS" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    let portal = build(&config).await.unwrap();
    assert!(portal.banner.iter().any(|l| l.contains("in memory")));
    assert!(!portal.banner.iter().any(|l| l.contains("Mail queue key")));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no file made"
    );
}
