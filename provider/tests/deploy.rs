//! The systemd unit in `deploy/`: the commands it runs are the provider's, and the hardening
//! README.md promises ("Deploying") is in it.

#![allow(clippy::expect_used, reason = "a test: a missing file fails it")]

use clap::Parser;

fn unit() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/gatehouse-provider.service"
    );
    std::fs::read_to_string(path).expect("deploy/gatehouse-provider.service")
}

/// The values of `key=` lines in the unit.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_unit_runs_provider_commands() {
    let unit = unit();
    let commands = [values(&unit, "ExecStartPre"), values(&unit, "ExecStart")].concat();
    assert_eq!(commands.len(), 2, "{commands:?}");
    for command in commands {
        let args: Vec<&str> = command.split_whitespace().collect();
        assert!(args[0].ends_with("/provider"), "{command}");
        provider::cli::Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    // The database URL is provider.toml's (or provider.env's): an Environment= line here
    // would override it without a word.
    assert!(values(&unit, "Environment").is_empty());
    assert!(unit.contains("database_url = \"sqlite:///var/lib/gatehouse/"));
    assert_eq!(values(&unit, "WorkingDirectory"), ["/etc/gatehouse"]);
    assert_eq!(values(&unit, "StateDirectory"), ["gatehouse"]);
}

#[test]
fn the_unit_is_hardened() {
    let unit = unit();
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictNamespaces", "yes"),
        ("SystemCallArchitectures", "native"),
        ("KillSignal", "SIGTERM"),
        ("UMask", "0077"),
        ("SystemCallErrorNumber", "EPERM"),
    ] {
        assert_eq!(values(&unit, key), [value], "{key}");
    }
    assert!(values(&unit, "SystemCallFilter").contains(&"@system-service"));
}
