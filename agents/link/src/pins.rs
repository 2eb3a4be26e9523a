//! Agents' certificates as Central pinned them: one line per agent, `host:port FINGERPRINT`,
//! in a file like SSH's known_hosts. The first contact pins; a different certificate later
//! is refused until its line is removed.
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The pinned certificates, kept in a file.
#[derive(Clone, Debug)]
pub struct Pins {
    path: PathBuf,
    map: Arc<Mutex<HashMap<String, String>>>,
}

/// How a presented certificate compares with the pin.
#[derive(Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// The pinned one.
    Same,
    /// No pin yet.
    New,
    /// Another one is pinned (its fingerprint).
    Changed(String),
}

impl Pins {
    /// Opens (or starts) the pin file; lines that are not `addr fingerprint` are ignored.
    pub fn open(path: &Path) -> std::io::Result<Pins> {
        let mut map = HashMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines() {
                    let mut it = line.split_whitespace();
                    if let (Some(a), Some(f)) = (it.next(), it.next()) {
                        if !a.starts_with('#') {
                            map.insert(a.to_string(), f.to_string());
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Pins {
            path: path.to_path_buf(),
            map: Arc::new(Mutex::new(map)),
        })
    }

    /// The file, for messages.
    pub fn file(&self) -> String {
        self.path.display().to_string()
    }

    /// The fingerprint pinned for an agent.
    pub fn get(&self, addr: &str) -> Option<String> {
        self.map.lock().expect("pins lock").get(addr).cloned()
    }

    /// Compares `got` with the pin of `addr`. Saves nothing: see [`Pins::remember`].
    pub fn compare(&self, addr: &str, got: &str) -> PinCheck {
        let same = |a: &str, b: &str| {
            ipam_tls::normalize_pin(a).is_some()
                && ipam_tls::normalize_pin(a) == ipam_tls::normalize_pin(b)
        };
        match self.get(addr) {
            Some(p) if same(&p, got) => PinCheck::Same,
            Some(p) => PinCheck::Changed(p),
            None => PinCheck::New,
        }
    }

    /// Pins `got` for `addr` (appending to the file), unless a pin is there already.
    pub fn remember(&self, addr: &str, got: &str) {
        let mut map = self.map.lock().expect("pins lock");
        if map.contains_key(addr) {
            return;
        }
        map.insert(addr.to_string(), got.to_string());
        let line = format!("{addr} {got}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_all()));
        if let Err(e) = written {
            tracing::warn!(
                "cannot save the pin of {addr} in {}: {e}",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pin_is_kept_in_the_file_and_a_changed_one_is_seen() {
        let dir = std::env::temp_dir().join(format!("ipam-pins-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("agent-pins");
        let a = "AB:".repeat(31) + "AB";
        let b = "CD".repeat(32);
        let pins = Pins::open(&file).unwrap();
        assert_eq!(pins.compare("ns1:1337", &a), PinCheck::New);
        pins.remember("ns1:1337", &a);
        pins.remember("ns1:1337", &b);
        // Read back from the file; case and colons do not matter.
        let pins = Pins::open(&file).unwrap();
        assert_eq!(pins.compare("ns1:1337", &a.to_lowercase()), PinCheck::Same);
        assert_eq!(pins.compare("ns1:1337", &b), PinCheck::Changed(a.clone()));
        assert_eq!(pins.compare("ns2:1337", &a), PinCheck::New);
        std::fs::write(&file, "# comment\nns1:1337 not-a-fingerprint\n").unwrap();
        let pins = Pins::open(&file).unwrap();
        assert!(matches!(
            pins.compare("ns1:1337", "not-a-fingerprint"),
            PinCheck::Changed(_)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
