//! Pure "what to exec" for a container: the image's local executable, the argument vector, the
//! process environment and the working directory.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

use super::env::{EnvList, expand};

/// The key an image maps by: its repository's last path segment without tag or digest, e.g.
/// `ghcr.io/acme/stampede:0.1.0` → `stampede`, `localhost:5000/x@sha256:…` → `x`.
pub fn image_key(image: &str) -> &str {
    let image = image.trim();
    let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
    let last = without_digest
        .rsplit_once('/')
        .map_or(without_digest, |(_, last)| last);
    // A ':' in the last segment starts the tag (a registry port sits in an earlier segment).
    last.split_once(':').map_or(last, |(name, _)| name)
}

/// The local executable for `image`, if one is mapped.
pub fn resolve_image<'a>(images: &'a [(String, PathBuf)], image: &str) -> Option<&'a Path> {
    let key = image_key(image);
    if key.is_empty() {
        return None;
    }
    images
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, path)| path.as_path())
}

/// The executable to spawn for a mapped path: a path with a directory part is made absolute
/// (against the test process's working directory, since the child runs elsewhere); a bare
/// name is left for a `PATH` lookup.
pub fn executable(mapped: &Path) -> PathBuf {
    if mapped.components().count() > 1 {
        std::path::absolute(mapped).unwrap_or_else(|_| mapped.to_path_buf())
    } else {
        mapped.to_path_buf()
    }
}

/// The arguments after the executable, `$(VAR)`-expanded against the container's environment
/// as Kubernetes does: `command[1..] + args` when `command` is set (its first element is the
/// mapped executable), else `args` (the image's entrypoint is the executable).
pub fn argv(container: &Container, env: &EnvList) -> Vec<String> {
    let lookup = |name: &str| env.get(name).map(str::to_string);
    let command = container.command.as_deref().unwrap_or_default();
    let args = container.args.iter().flatten();
    command
        .iter()
        .skip(1)
        .chain(args)
        .map(|a| expand(a, lookup))
        .collect()
}

/// The process environment: `PATH` and `HOME` of the test process (nothing else of it, as a
/// container does not see the host's environment), `HOSTNAME`, `KUBECONFIG`, then the
/// container's own variables (which may override any of these).
pub fn process_env(
    host_path: Option<String>,
    host_home: Option<String>,
    hostname: &str,
    kubeconfig: &Path,
    container_env: &EnvList,
) -> Vec<(String, String)> {
    let mut env = EnvList::default();
    if let Some(path) = host_path {
        env.set("PATH", path);
    }
    if let Some(home) = host_home {
        env.set("HOME", home);
    }
    env.set("HOSTNAME", hostname.to_string());
    env.set("KUBECONFIG", kubeconfig.to_string_lossy().into_owned());
    for (name, value) in &container_env.0 {
        env.set(name, value.clone());
    }
    env.0
}

/// The working directory: the container's `workingDir` when it exists on this machine, else
/// `default` (the log directory).
pub fn working_dir(container: &Container, default: &Path) -> PathBuf {
    match container.working_dir.as_deref() {
        Some(dir) if !dir.is_empty() && Path::new(dir).is_dir() => PathBuf::from(dir),
        _ => default.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_keys_strip_registry_tag_and_digest() {
        assert_eq!(image_key("ghcr.io/acme/stampede:0.1.0"), "stampede");
        assert_eq!(image_key("stampede"), "stampede");
        assert_eq!(image_key("stampede:latest"), "stampede");
        assert_eq!(image_key("localhost:5000/tools/stampede"), "stampede");
        assert_eq!(image_key("localhost:5000/stampede:1"), "stampede");
        assert_eq!(image_key("docker.io/library/busybox@sha256:abc"), "busybox");
        assert_eq!(image_key("r.io/x/y:1.0@sha256:abc"), "y");
        assert_eq!(image_key(""), "");
    }

    #[test]
    fn images_resolve_to_mapped_executables() {
        let images = vec![
            ("stampede".to_string(), PathBuf::from("/bin/stampede")),
            ("echo".to_string(), PathBuf::from("/bin/echo")),
        ];
        assert_eq!(
            resolve_image(&images, "ghcr.io/acme/stampede:0.1.0"),
            Some(Path::new("/bin/stampede"))
        );
        assert_eq!(
            resolve_image(&images, "echo@sha256:0"),
            Some(Path::new("/bin/echo"))
        );
        assert_eq!(resolve_image(&images, "ghcr.io/acme/other:1"), None);
        assert_eq!(resolve_image(&images, "ghcr.io/stampede/tool:1"), None);
        assert_eq!(resolve_image(&images, ""), None);
    }

    #[test]
    fn mapped_paths_become_absolute_but_bare_names_do_not() {
        assert_eq!(executable(Path::new("/bin/sh")), Path::new("/bin/sh"));
        assert_eq!(executable(Path::new("sh")), Path::new("sh"));
        let relative = executable(Path::new("target/debug/stampede"));
        assert!(relative.is_absolute());
        assert!(relative.ends_with("target/debug/stampede"));
    }

    fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Container {
            name: "c".into(),
            command: command.map(strings),
            args: args.map(strings),
            ..Container::default()
        }
    }

    #[test]
    fn argv_replaces_the_command_head_with_the_executable() {
        let mut env = EnvList::default();
        env.set("RATE", "10".into());
        let none = EnvList::default();
        assert_eq!(
            argv(
                &container(Some(&["/usr/bin/stampede", "run"]), Some(&["-f", "x.yaml"])),
                &none
            ),
            ["run", "-f", "x.yaml"]
        );
        assert_eq!(
            argv(&container(None, Some(&["run", "--rate=$(RATE)"])), &env),
            ["run", "--rate=10"]
        );
        assert_eq!(
            argv(&container(Some(&["stampede"]), None), &env),
            Vec::<String>::new()
        );
        assert_eq!(
            argv(
                &container(Some(&[]), Some(&["a", "$(NOPE)", "$$(RATE)"])),
                &env
            ),
            ["a", "$(NOPE)", "$(RATE)"]
        );
        assert_eq!(argv(&container(None, None), &env), Vec::<String>::new());
    }

    #[test]
    fn process_env_is_minimal_and_the_container_wins() {
        let mut own = EnvList::default();
        own.set("A", "1".into());
        own.set("HOME", "/custom".into());
        let env = process_env(
            Some("/usr/bin".into()),
            Some("/root".into()),
            "load-0",
            Path::new("/tmp/kubeconfig"),
            &own,
        );
        let pairs: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("PATH", "/usr/bin"),
                ("HOME", "/custom"),
                ("HOSTNAME", "load-0"),
                ("KUBECONFIG", "/tmp/kubeconfig"),
                ("A", "1"),
            ]
        );
        let bare = process_env(None, None, "p", Path::new("k"), &EnvList::default());
        assert_eq!(bare.len(), 2);
    }

    #[test]
    fn working_dir_falls_back_to_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = container(None, None);
        assert_eq!(working_dir(&c, Path::new("/logs")), Path::new("/logs"));
        c.working_dir = Some(dir.path().to_string_lossy().into_owned());
        assert_eq!(working_dir(&c, Path::new("/logs")), dir.path());
        c.working_dir = Some("/definitely/not/here".into());
        assert_eq!(working_dir(&c, Path::new("/logs")), Path::new("/logs"));
    }
}
