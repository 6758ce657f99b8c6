//! Debian packages the tests need besides the clients (Chromium, socat), installed with apt-get
//! when missing, because CI machines start bare.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run_install, with_file_lock};

/// Makes sure `program` exists, installing Debian's `package` when it is missing and the process
/// runs as root: `apt-get install -y`, and `apt-get update` plus a second attempt only if the
/// first fails. An exclusive lock on a file in the temp directory keeps concurrent test processes
/// from running apt at the same time (apt would refuse the second).
pub fn ensure_program(program: &Path, package: &str) -> Result<PathBuf, String> {
    ensure_installed(&program.display().to_string(), || program.exists(), package)?;
    Ok(program.to_path_buf())
}

/// Makes sure `what` is there (`present`), installing Debian's `package` when it is not and the
/// process runs as root, as [`ensure_program`] does.
pub fn ensure_installed(
    what: &str,
    present: impl Fn() -> bool,
    package: &str,
) -> Result<(), String> {
    if present() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "{what} is missing and this process is not root: install Debian's `{package}` \
             package (apt-get install {package})"
        ));
    }
    // One lock for every package: apt refuses to run twice at once.
    let lock_path = std::env::temp_dir().join("sockio-testkit-apt-install.lock");
    let install = ["install", "-y", package];
    with_file_lock(&lock_path, || {
        // Another process may have installed it while this one waited for the lock.
        if present() {
            return Ok(());
        }
        apt_get(&install).or_else(|first| {
            apt_get(&["update"])
                .and_then(|()| apt_get(&install))
                .map_err(|second| format!("{first}\nafter apt-get update: {second}"))
        })
    })?;
    if present() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install {package} succeeded but {what} is still missing"
        ))
    }
}

fn apt_get(args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("apt-get");
    cmd.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .current_dir("/");
    run_install(cmd, &format!("apt-get {}", args.join(" ")))
}

/// The effective uid is 0 (`/proc/self/status`, so no libc and no `unsafe`).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            // Uid: real effective saved filesystem
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_root_agrees_with_id() {
        let out = Command::new("id").arg("-u").output().expect("id -u");
        let uid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(is_root(), uid == "0", "id -u says {uid}");
    }
}
