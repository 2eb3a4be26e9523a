//! Sessions, HTTP Basic, and locking accounts after repeated failed logins.
//!
//! Passwords are checked by the engine (argon2id, tens of milliseconds). A session token is
//! 32 random bytes; HTTP Basic credentials that passed are remembered for a minute (keyed by
//! a SHA-256 of name and password, never the password itself) so that clients sending Basic
//! on every call do not pay argon2 on every call.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipam_engine::Id;

/// A logged-in user.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub user: Id,
    pub name: String,
    last_used: Instant,
}

pub(crate) struct Auth {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, (u32, Option<Instant>)>>,
    basic: Mutex<HashMap<[u8; 32], (Id, String, Instant)>>,
    idle: Duration,
    lockout_after: u32,
    lockout: Duration,
}

/// Why a login was refused before the password was checked.
#[derive(Debug)]
pub(crate) struct Locked {
    pub seconds_left: u64,
}

const BASIC_CACHE: Duration = Duration::from_secs(60);

impl Auth {
    pub fn new(idle_secs: u64, lockout_after: u32, lockout_secs: u64) -> Auth {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            basic: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(idle_secs),
            lockout_after,
            lockout: Duration::from_secs(lockout_secs),
        }
    }

    /// A new session for `user`; answers its token.
    pub fn open(&self, user: Id, name: &str) -> String {
        let mut b = [0u8; 32];
        getrandom::getrandom(&mut b).expect("the OS random source works");
        let token: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let mut s = self.sessions.lock().expect("sessions lock");
        let now = Instant::now();
        if s.len() > 10_000 {
            s.retain(|_, v| now.duration_since(v.last_used) < self.idle);
        }
        s.insert(
            token.clone(),
            Session {
                user,
                name: name.to_string(),
                last_used: now,
            },
        );
        token
    }

    /// The session of a token, refreshing its idle timer; `None` when unknown or expired.
    pub fn session(&self, token: &str) -> Option<Session> {
        let mut s = self.sessions.lock().expect("sessions lock");
        let now = Instant::now();
        match s.get_mut(token) {
            Some(v) if now.duration_since(v.last_used) < self.idle => {
                v.last_used = now;
                Some(v.clone())
            }
            Some(_) => {
                s.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn close(&self, token: &str) -> bool {
        self.sessions
            .lock()
            .expect("sessions lock")
            .remove(token)
            .is_some()
    }

    /// Ends every session and forgets cached credentials of a user (password changed,
    /// user deleted).
    pub fn forget_user(&self, user: Id) {
        self.sessions
            .lock()
            .expect("sessions lock")
            .retain(|_, v| v.user != user);
        self.basic
            .lock()
            .expect("basic lock")
            .retain(|_, v| v.0 != user);
    }

    /// Counts a login attempt before its password is checked (so that a burst of
    /// concurrent guesses cannot outrun the count); refuses it when the account is locked or
    /// this attempt goes past the limit. Names are compared trimmed and case-insensitively,
    /// as the engine matches them.
    pub fn attempt(&self, name: &str) -> Result<(), Locked> {
        let key = name.trim().to_ascii_lowercase();
        let now = Instant::now();
        let mut f = self.failures.lock().expect("failures lock");
        if f.len() >= 100_000 {
            // Bounded memory: forget unlocked counts first (locked accounts stay locked).
            f.retain(|_, v| v.1.is_some_and(|u| u > now));
        }
        let e = f.entry(key).or_insert((0, None));
        match e.1 {
            Some(until) if until > now => {
                return Err(Locked {
                    seconds_left: (until - now).as_secs().max(1),
                })
            }
            Some(_) => *e = (0, None),
            None => {}
        }
        if e.0 >= self.lockout_after {
            e.1 = Some(now + self.lockout);
            return Err(Locked {
                seconds_left: self.lockout.as_secs().max(1),
            });
        }
        e.0 += 1;
        Ok(())
    }

    /// Records how a counted attempt ended: success clears the count; a failure keeps it,
    /// and answers true when it used up the account's attempts (which locks it).
    pub fn finish(&self, name: &str, ok: bool) -> bool {
        let key = name.trim().to_ascii_lowercase();
        let mut f = self.failures.lock().expect("failures lock");
        if ok {
            f.remove(&key);
            return false;
        }
        match f.get_mut(&key) {
            Some(e) if e.0 >= self.lockout_after && e.1.is_none() => {
                e.1 = Some(Instant::now() + self.lockout);
                true
            }
            _ => false,
        }
    }

    /// A remembered good Basic login.
    pub fn basic_cached(&self, name: &str, password: &str) -> Option<(Id, String)> {
        let k = basic_key(name, password);
        let b = self.basic.lock().expect("basic lock");
        b.get(&k)
            .filter(|v| v.2.elapsed() < BASIC_CACHE)
            .map(|v| (v.0, v.1.clone()))
    }

    /// Remembers a good Basic login for a minute.
    pub fn basic_remember(&self, name: &str, password: &str, user: Id, canonical: &str) {
        let mut b = self.basic.lock().expect("basic lock");
        if b.len() > 10_000 {
            b.retain(|_, v| v.2.elapsed() < BASIC_CACHE);
        }
        b.insert(
            basic_key(name, password),
            (user, canonical.to_string(), Instant::now()),
        );
    }
}

fn basic_key(name: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(name.to_ascii_lowercase().as_bytes());
    ctx.update(&[0]);
    ctx.update(password.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_after_n_failures_and_reset_on_success() {
        let a = Auth::new(60, 3, 300);
        for name in ["Bob", " bob", "BOB\t"] {
            a.attempt(name).unwrap();
            assert!(!a.finish(name, false) || name == "BOB\t");
        }
        assert!(
            a.attempt("bob").is_err(),
            "variants of one name share the count"
        );
        // Counted before the check: a burst cannot outrun the limit.
        let b = Auth::new(60, 3, 300);
        let passed = (0..10).filter(|_| b.attempt("x").is_ok()).count();
        assert_eq!(passed, 3);
        let c = Auth::new(60, 3, 300);
        c.attempt("y").unwrap();
        c.finish("y", false);
        c.attempt("y").unwrap();
        c.finish("y", true);
        for _ in 0..2 {
            c.attempt("y").unwrap();
            c.finish("y", false);
        }
        assert!(c.attempt("y").is_ok(), "a success reset the count");
    }

    #[test]
    fn sessions_expire_and_close() {
        let a = Auth::new(0, 3, 1);
        let t = a.open(5, "u");
        assert!(a.session(&t).is_none(), "idle 0 expires at once");
        let a = Auth::new(60, 3, 1);
        let t = a.open(5, "u");
        assert_eq!(a.session(&t).unwrap().user, 5);
        a.forget_user(5);
        assert!(a.session(&t).is_none());
        let t = a.open(6, "v");
        assert!(a.close(&t));
        assert!(!a.close(&t));
    }
}
