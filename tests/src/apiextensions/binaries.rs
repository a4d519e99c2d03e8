//! Where the real server's binaries are, and whether the tests must use them.
//!
//! `STAMPEDE_REAL_APISERVER` chooses: a directory holding `apiextensions-apiserver` and `etcd`
//! (what `tests/real-apiserver/build.sh` prints), `off` for the in-memory stand-in alone, or
//! unset for the newest build in the cache of `build.sh`, if any. With
//! `STAMPEDE_REAL_APISERVER_REQUIRED=1` (CI sets it) a missing server is an error, not a
//! quiet fall back to the in-memory mode.

use std::path::{Path, PathBuf};

/// The variable that names the binaries' directory (or `off`).
pub const DIR_ENV: &str = "STAMPEDE_REAL_APISERVER";
/// The variable that makes a missing real server an error.
pub const REQUIRED_ENV: &str = "STAMPEDE_REAL_APISERVER_REQUIRED";

/// The two binaries and the package versions they were built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// `apiextensions-apiserver`.
    pub apiextensions_apiserver: PathBuf,
    /// `etcd`.
    pub etcd: PathBuf,
    /// One line: the packages and versions (from the build's `VERSIONS` file).
    pub version: String,
}

/// Why there is no real server to delegate to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// `STAMPEDE_REAL_APISERVER=off`.
    #[error("{DIR_ENV}=off")]
    TurnedOff,
    /// The named directory lacks a binary.
    #[error("{DIR_ENV}={dir}: no executable {binary} there (run tests/real-apiserver/build.sh)")]
    NotBuilt {
        /// The directory.
        dir: String,
        /// The missing binary.
        binary: &'static str,
    },
    /// Nothing named and nothing cached.
    #[error("no build in {cache} (run tests/real-apiserver/build.sh, or .ci/deps)")]
    NoCache {
        /// Where the cache was looked for.
        cache: String,
    },
}

/// The binaries to use, from the environment.
pub fn find() -> Result<Binaries, Missing> {
    match std::env::var(DIR_ENV) {
        Ok(value) if value == "off" => Err(Missing::TurnedOff),
        Ok(value) if !value.is_empty() => in_dir(Path::new(&value)),
        _ => newest_cached(&cache_root()),
    }
}

/// Whether a missing real server must fail the test run (`STAMPEDE_REAL_APISERVER_REQUIRED`).
pub fn required() -> bool {
    std::env::var(REQUIRED_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `${STAMPEDE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/stampede}/real-apiserver`, as build.sh uses.
pub fn cache_root() -> PathBuf {
    let base = std::env::var_os("STAMPEDE_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(|d| PathBuf::from(d).join("stampede"))
        })
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/stampede")))
        .unwrap_or_else(|| PathBuf::from(".cache/stampede"));
    base.join("real-apiserver")
}

/// The binaries in `dir`.
pub fn in_dir(dir: &Path) -> Result<Binaries, Missing> {
    let binary = |name: &'static str| {
        let path = dir.join(name);
        if is_executable(&path) {
            Ok(path)
        } else {
            Err(Missing::NotBuilt {
                dir: dir.display().to_string(),
                binary: name,
            })
        }
    };
    let apiextensions_apiserver = binary("apiextensions-apiserver")?;
    let etcd = binary("etcd")?;
    let version = std::fs::read_to_string(dir.join("VERSIONS"))
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|_| dir.display().to_string());
    Ok(Binaries {
        apiextensions_apiserver,
        etcd,
        version,
    })
}

/// The most recently built complete directory under `cache`.
pub fn newest_cached(cache: &Path) -> Result<Binaries, Missing> {
    let mut builds: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(cache)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| in_dir(path).is_ok())
        .filter_map(|path| {
            let built = std::fs::metadata(path.join("apiextensions-apiserver"))
                .and_then(|m| m.modified())
                .ok()?;
            Some((built, path))
        })
        .collect();
    builds.sort();
    match builds.pop() {
        Some((_, dir)) => in_dir(&dir),
        None => Err(Missing::NoCache {
            cache: cache.display().to_string(),
        }),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_build(dir: &Path, versions: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        for name in ["apiextensions-apiserver", "etcd"] {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.join("VERSIONS"), versions).unwrap();
    }

    #[test]
    fn a_directory_needs_both_executables() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            in_dir(dir.path()),
            Err(Missing::NotBuilt {
                dir: dir.path().display().to_string(),
                binary: "apiextensions-apiserver"
            })
        );
        fake_build(dir.path(), "a 1\nb 2\n");
        let found = in_dir(dir.path()).unwrap();
        assert_eq!(found.version, "a 1, b 2");
        assert_eq!(found.etcd, dir.path().join("etcd"));
    }

    #[test]
    fn the_newest_complete_build_wins_and_partial_ones_are_skipped() {
        let cache = tempfile::tempdir().unwrap();
        assert!(matches!(
            newest_cached(cache.path()),
            Err(Missing::NoCache { .. })
        ));
        fake_build(&cache.path().join("old"), "old\n");
        std::fs::create_dir_all(cache.path().join("partial")).unwrap();
        // Modification times have a coarse resolution on some filesystems.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(10);
        fake_build(&cache.path().join("new"), "new\n");
        std::fs::File::options()
            .write(true)
            .open(cache.path().join("new/apiextensions-apiserver"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(newest_cached(cache.path()).unwrap().version, "new");
    }
}
