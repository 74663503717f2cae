//! Where the URL and the credentials come from: a flag, else the environment (`CRM_EDGE_URL`,
//! `CRM_EDGE_API_KEY`, `CRM_EDGE_ADMIN_TOKEN`), else a profile of the config file, else the
//! local stack's URL.
//!
//! The config file (`$CRM_EDGE_CONFIG`, else `$XDG_CONFIG_HOME/crm-edge/config`, else
//! `~/.config/crm-edge/config`) holds profiles as sections of `key = value` lines:
//!
//! ```text
//! [default]
//! url = https://crm-edge.example.com
//! api_key = cek_…
//!
//! [staging]
//! url = https://staging.crm-edge.example.com
//! admin_token = …
//! ```
//!
//! `--profile NAME` (or `CRM_EDGE_PROFILE`) picks one; without it, `[default]` is used when the
//! file has it.

use crate::client::Failure;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const LOCAL_URL: &str = "http://127.0.0.1:8787";

#[derive(Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub url: Option<String>,
    pub api_key: Option<String>,
    pub admin_token: Option<String>,
}

/// The secrets stay out of debug output.
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |value: &Option<String>| if value.is_some() { "set" } else { "not set" };
        write!(
            f,
            "Profile {{ url: {:?}, api_key: {}, admin_token: {} }}",
            self.url,
            set(&self.api_key),
            set(&self.admin_token)
        )
    }
}

/// Refuses a base URL that would send the key in the clear: http is for this machine only.
pub fn check_url(url: &str) -> Result<(), Failure> {
    let Some(rest) = url.strip_prefix("http://") else {
        return if url.starts_with("https://") {
            Ok(())
        } else {
            Err(Failure::Usage(format!(
                "{url}: the URL must start with https:// (or http:// to this machine)"
            )))
        };
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "{url}: http:// would send the key in the clear; use https:// (http is for this machine only)"
        )))
    }
}

/// A warning when the config file, which holds secrets, can be read by others than its owner.
#[cfg(unix)]
fn warn_if_shared(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} holds secrets and is readable by others (mode {mode:03o}); run: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &std::path::Path) {}

impl Profile {
    /// Each setting from `self` where it has one, else from `fallback`.
    pub fn or(self, fallback: Profile) -> Profile {
        Profile {
            url: self.url.or(fallback.url),
            api_key: self.api_key.or(fallback.api_key),
            admin_token: self.admin_token.or(fallback.admin_token),
        }
    }
}

/// The config file's path, if a home for it is known.
pub fn path() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("CRM_EDGE_CONFIG")
        .or_else(|| var("XDG_CONFIG_HOME").map(|dir| dir.join("crm-edge/config")))
        .or_else(|| var("HOME").map(|home| home.join(".config/crm-edge/config")))
}

/// The profile to use: `name`'s (which must exist), else `[default]` if the file has one.
pub fn load(name: Option<&str>) -> Result<Profile, Failure> {
    let Some(path) = path() else {
        return match name {
            Some(name) => Err(Failure::Usage(format!(
                "profile {name:?}: no config file (set CRM_EDGE_CONFIG or HOME)"
            ))),
            None => Ok(Profile::default()),
        };
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if name.is_none() => return Ok(Profile::default()),
        Err(e) => return Err(Failure::Usage(format!("{}: {e}", path.display()))),
    };
    let mut profiles = parse(&text).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    if profiles
        .values()
        .any(|p| p.api_key.is_some() || p.admin_token.is_some())
    {
        warn_if_shared(&path);
    }
    match name {
        None => Ok(profiles.remove("default").unwrap_or_default()),
        Some(name) => profiles
            .remove(name)
            .ok_or_else(|| Failure::Usage(format!("{}: no profile [{name}]", path.display()))),
    }
}

/// The profiles of a config file, by name.
pub fn parse(text: &str) -> Result<BTreeMap<String, Profile>, String> {
    let mut profiles = BTreeMap::new();
    let mut current: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = || format!("line {}", index + 1);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            let name = name.trim().to_owned();
            profiles.entry(name.clone()).or_insert_with(Profile::default);
            current = Some(name);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("{}: expected `key = value` or `[profile]`", at()));
        };
        let name = current
            .as_ref()
            .ok_or_else(|| format!("{}: a setting before any [profile]", at()))?;
        let profile = profiles.entry(name.clone()).or_insert_with(Profile::default);
        let value = Some(value.trim().trim_matches('"').to_owned());
        match key.trim() {
            "url" => profile.url = value,
            "api_key" => profile.api_key = value,
            "admin_token" => profile.admin_token = value,
            other => {
                return Err(format!(
                    "{}: unknown setting {other:?} (url, api_key, admin_token)",
                    at()
                ));
            }
        }
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_by_name_and_flags_win() -> Result<(), String> {
        let text =
            "# mine\n[default]\nurl = https://a.example\napi_key = \"cek_a\"\n\n[ops]\nadmin_token=t\n";
        let mut profiles = parse(text)?;
        let default = profiles.remove("default").unwrap_or_default();
        assert_eq!(default.url.as_deref(), Some("https://a.example"));
        assert_eq!(default.api_key.as_deref(), Some("cek_a"));
        let ops = profiles.remove("ops").unwrap_or_default();
        assert_eq!(ops.admin_token.as_deref(), Some("t"));
        let flags = Profile {
            url: Some("http://flag".into()),
            ..Profile::default()
        };
        assert_eq!(flags.or(default).url.as_deref(), Some("http://flag"));
        Ok(())
    }

    #[test]
    fn a_broken_file_says_which_line() {
        assert_eq!(
            parse("url = x\n"),
            Err("line 1: a setting before any [profile]".to_owned())
        );
        assert!(parse("[a]\ncolour = red\n").is_err_and(|e| e.starts_with("line 2: unknown setting")));
        assert!(parse("[a]\nnonsense\n").is_err_and(|e| e.starts_with("line 2")));
    }

    #[test]
    fn http_is_for_this_machine_only() {
        for url in [
            "https://crm-edge.example.com",
            "http://127.0.0.1:8787",
            "http://localhost:8787/",
            "http://[::1]:8787",
        ] {
            assert!(check_url(url).is_ok(), "{url}");
        }
        for url in [
            "http://crm-edge.example.com",
            "http://10.0.0.5:8787",
            "ftp://example.com",
            "crm-edge.example.com",
        ] {
            assert!(check_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn a_profile_prints_without_its_secrets() {
        let profile = Profile {
            url: Some("https://x".into()),
            api_key: Some("cek_secret".into()),
            admin_token: None,
        };
        let shown = format!("{profile:?}");
        assert!(
            !shown.contains("cek_secret") && shown.contains("api_key: set"),
            "{shown}"
        );
    }
}
