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

    /// Refuses a login attempt for a locked account.
    pub fn check_locked(&self, name: &str) -> Result<(), Locked> {
        let f = self.failures.lock().expect("failures lock");
        if let Some((_, Some(until))) = f.get(&name.to_ascii_lowercase()) {
            let now = Instant::now();
            if *until > now {
                return Err(Locked {
                    seconds_left: (*until - now).as_secs().max(1),
                });
            }
        }
        Ok(())
    }

    /// Records a failed login; answers true when this failure locked the account.
    pub fn failed(&self, name: &str) -> bool {
        let mut f = self.failures.lock().expect("failures lock");
        let e = f.entry(name.to_ascii_lowercase()).or_insert((0, None));
        if e.1.is_some_and(|u| u <= Instant::now()) {
            *e = (0, None);
        }
        e.0 += 1;
        if e.0 >= self.lockout_after && e.1.is_none() {
            e.1 = Some(Instant::now() + self.lockout);
            return true;
        }
        false
    }

    /// Clears the failure count after a good login.
    pub fn succeeded(&self, name: &str) {
        self.failures
            .lock()
            .expect("failures lock")
            .remove(&name.to_ascii_lowercase());
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
        assert!(a.check_locked("Bob").is_ok());
        assert!(!a.failed("bob"));
        assert!(!a.failed("BOB"));
        assert!(a.failed("bob"));
        assert!(a.check_locked("bob").is_err());
        let b = Auth::new(60, 3, 300);
        b.failed("x");
        b.succeeded("x");
        b.failed("x");
        b.failed("x");
        assert!(b.check_locked("x").is_ok());
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
