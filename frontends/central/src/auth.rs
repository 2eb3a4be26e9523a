//! Sessions, HTTP Basic, and throttling failed logins.
//!
//! Passwords are checked by the engine (argon2id, tens of milliseconds). A session token is
//! 32 random bytes; HTTP Basic credentials that passed are remembered for a minute (keyed by
//! a SHA-256 of name and password, never the password itself) so that clients sending Basic
//! on every call do not pay argon2 on every call.
//!
//! Failed logins are counted per user and client address (an IPv6 /64 counts as one
//! address), and only failures count: after `delay_after` failures in a row from one
//! address, each further attempt for that user from there must wait 1 s after the last
//! failure, then 2 s, 4 s, ... up to `delay_max`; a success clears the count. Someone
//! guessing from elsewhere therefore cannot lock a user out, and any number of parallel
//! correct logins all pass. Locking the account itself for everyone, after `lock_after`
//! failures in a row from anywhere, is an option (off by default). Both tables are bounded.
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
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

/// How failed logins are throttled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Throttle {
    /// Failures in a row (one user, one address) before attempts must wait.
    pub delay_after: u32,
    /// The longest wait.
    pub delay_max: Duration,
    /// Failures in a row (one user, any address) that lock the account; 0: never.
    pub lock_after: u32,
    /// How long a locked account stays locked.
    pub lock: Duration,
}

pub(crate) struct Auth {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<Failures>,
    basic: Mutex<HashMap<[u8; 32], (Id, String, Instant)>>,
    idle: Duration,
    throttle: Throttle,
}

/// Why a login was refused before its password was checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This address failed too often for this user: try again in `seconds`.
    Wait { seconds: u64 },
    /// The account is locked (the `lock_after` option) for `seconds` more.
    Locked { seconds: u64 },
}

/// Most entries in each failure table; past it the oldest are forgotten first.
const MAX_ENTRIES: usize = 100_000;

/// Failure counts, by (user, address) and by user.
#[derive(Default)]
struct Failures {
    pairs: HashMap<(String, IpAddr), Count>,
    accounts: HashMap<String, Count>,
}

/// Failures in a row and when the last one was; for accounts, until when it is locked.
#[derive(Clone, Copy, Debug)]
struct Count {
    n: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

const BASIC_CACHE: Duration = Duration::from_secs(60);

/// The user part of a key: names are compared trimmed and case-insensitively, as the
/// engine matches them.
fn user_key(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

/// The address part of a key: IPv4 (also when mapped into IPv6), or an IPv6 /64 (one
/// client usually has a whole one).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(a) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

/// Ceiling of a duration in whole seconds, at least 1.
fn seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl Throttle {
    /// How long after its last failure a pair with `n` failures in a row must wait.
    fn wait(&self, n: u32) -> Duration {
        if n < self.delay_after {
            return Duration::ZERO;
        }
        let doublings = (n - self.delay_after).min(30);
        Duration::from_secs(1u64 << doublings).min(self.delay_max)
    }

    /// How long a count is kept after its last failure: then it starts again from zero.
    fn forget_after(&self) -> Duration {
        self.delay_max.max(self.lock).max(Duration::from_secs(900))
    }
}

/// Inserts or updates `key` in a bounded table: when it is full, stale entries go first,
/// then the oldest tenth.
fn bounded_entry<K: Hash + Eq + Clone>(
    map: &mut HashMap<K, Count>,
    key: K,
    now: Instant,
    forget: Duration,
) -> &mut Count {
    if !map.contains_key(&key) && map.len() >= MAX_ENTRIES {
        map.retain(|_, c| {
            now.duration_since(c.last) < forget || c.locked_until.is_some_and(|u| u > now)
        });
        if map.len() >= MAX_ENTRIES {
            let mut times: Vec<Instant> = map.values().map(|c| c.last).collect();
            let cut = times.len() / 10;
            let (_, oldest_kept, _) = times.select_nth_unstable(cut);
            let oldest_kept = *oldest_kept;
            map.retain(|_, c| c.last >= oldest_kept);
        }
    }
    let fresh = Count {
        n: 0,
        last: now,
        locked_until: None,
    };
    let e = map.entry(key).or_insert(fresh);
    if now.duration_since(e.last) >= forget && e.locked_until.is_none_or(|u| u <= now) {
        *e = fresh;
    }
    e
}

impl Auth {
    pub fn new(idle_secs: u64, throttle: Throttle) -> Auth {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(Failures::default()),
            basic: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(idle_secs),
            throttle,
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

    /// Whether a login attempt for `name` from `ip` may have its password checked now;
    /// counts nothing (only failures count).
    pub fn check(&self, name: &str, ip: IpAddr) -> Result<(), Refusal> {
        self.check_at(name, ip, Instant::now())
    }

    fn check_at(&self, name: &str, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let user = user_key(name);
        let t = self.throttle;
        let f = self.failures.lock().expect("failures lock");
        if let Some(until) = f.accounts.get(&user).and_then(|c| c.locked_until) {
            if until > now {
                return Err(Refusal::Locked {
                    seconds: seconds(until - now),
                });
            }
        }
        if let Some(c) = f.pairs.get(&(user, address_key(ip))) {
            if now.duration_since(c.last) < t.forget_after() {
                let allowed = c.last + t.wait(c.n);
                if allowed > now {
                    return Err(Refusal::Wait {
                        seconds: seconds(allowed - now),
                    });
                }
            }
        }
        Ok(())
    }

    /// Records a wrong password for `name` from `ip`; answers true when this failure
    /// locked the account (only with the `lock_after` option).
    pub fn failed(&self, name: &str, ip: IpAddr) -> bool {
        self.failed_at(name, ip, Instant::now())
    }

    fn failed_at(&self, name: &str, ip: IpAddr, now: Instant) -> bool {
        let user = user_key(name);
        let t = self.throttle;
        let forget = t.forget_after();
        let mut f = self.failures.lock().expect("failures lock");
        let p = bounded_entry(&mut f.pairs, (user.clone(), address_key(ip)), now, forget);
        p.n = p.n.saturating_add(1);
        p.last = now;
        if t.lock_after == 0 {
            return false;
        }
        let a = bounded_entry(&mut f.accounts, user, now, forget);
        if a.locked_until.is_some_and(|u| u <= now) {
            // A lock that ran out starts a new count.
            *a = Count {
                n: 0,
                last: now,
                locked_until: None,
            };
        }
        a.n = a.n.saturating_add(1);
        a.last = now;
        if a.n >= t.lock_after && a.locked_until.is_none() {
            a.locked_until = Some(now + t.lock);
            return true;
        }
        false
    }

    /// Records a good password for `name` from `ip`: that address's count and the
    /// account's count start again.
    pub fn succeeded(&self, name: &str, ip: IpAddr) {
        let user = user_key(name);
        let mut f = self.failures.lock().expect("failures lock");
        f.pairs.remove(&(user.clone(), address_key(ip)));
        if f.accounts
            .get(&user)
            .is_some_and(|c| c.locked_until.is_none())
        {
            f.accounts.remove(&user);
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

    fn throttle(delay_after: u32, delay_max: u64, lock_after: u32) -> Throttle {
        Throttle {
            delay_after,
            delay_max: Duration::from_secs(delay_max),
            lock_after,
            lock: Duration::from_secs(300),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn waits_grow_per_user_and_address_and_a_success_clears_them() {
        let a = Auth::new(60, throttle(3, 10, 0));
        let (me, other) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(a.check_at("Bob", me, t0), Ok(()), "attempt {i}");
            assert!(!a.failed_at(" bob", me, t0));
        }
        // 1 s after the third failure, then 2, 4, 8, and never more than the cap.
        let mut t = t0;
        for wait in [1, 2, 4, 8, 10, 10] {
            assert_eq!(
                a.check_at("BOB", me, t),
                Err(Refusal::Wait { seconds: wait })
            );
            assert!(a.check_at("bob", other, t).is_ok(), "another address");
            assert!(a.check_at("alice", me, t).is_ok(), "another user");
            t += Duration::from_secs(wait);
            assert_eq!(a.check_at("bob", me, t), Ok(()));
            a.failed_at("bob", me, t);
        }
        a.succeeded("bob", me);
        assert_eq!(a.check_at("bob", me, t), Ok(()));
        // A count is forgotten long after its last failure.
        for _ in 0..5 {
            a.failed_at("carol", me, t);
        }
        assert!(a.check_at("carol", me, t).is_err());
        assert!(a
            .check_at("carol", me, t + Duration::from_secs(901))
            .is_ok());
    }

    #[test]
    fn an_ipv6_64_is_one_address() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        let a = Auth::new(60, throttle(1, 60, 0));
        let t = Instant::now();
        a.failed_at("x", ip("2001:db8::1"), t);
        assert!(a.check_at("x", ip("2001:db8::ffff"), t).is_err());
    }

    #[test]
    fn the_account_lock_is_an_option() {
        let t = Instant::now();
        let off = Auth::new(60, throttle(100, 60, 0));
        for i in 0..50 {
            off.failed_at("x", ip(&format!("10.0.0.{i}")), t);
        }
        assert!(off.check_at("x", ip("10.1.0.1"), t).is_ok());
        let on = Auth::new(60, throttle(100, 60, 3));
        assert!(!on.failed_at("x", ip("10.0.0.1"), t));
        assert!(!on.failed_at("x", ip("10.0.0.2"), t));
        assert!(on.failed_at("x", ip("10.0.0.3"), t), "the third locks");
        assert_eq!(
            on.check_at("x", ip("10.1.0.1"), t),
            Err(Refusal::Locked { seconds: 300 })
        );
        // A success does not lift a lock; its end does.
        on.succeeded("x", ip("10.1.0.1"));
        assert!(on.check_at("x", ip("10.1.0.1"), t).is_err());
        let later = t + Duration::from_secs(300);
        assert!(on.check_at("x", ip("10.1.0.1"), later).is_ok());
        assert!(!on.failed_at("x", ip("10.0.0.1"), later), "a new count");
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let a = Auth::new(60, throttle(1, 60, 0));
        let t = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 5000) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            a.failed_at("victim", addr, t + Duration::from_micros(u64::from(i)));
        }
        let n = a.failures.lock().unwrap().pairs.len();
        assert!(n <= MAX_ENTRIES, "{n}");
        // The newest entries are kept.
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 + MAX_ENTRIES as u32 + 4999,
        ));
        assert!(a
            .check_at("victim", newest, t + Duration::from_secs(1))
            .is_err());
    }

    #[test]
    fn sessions_expire_and_close() {
        let a = Auth::new(0, throttle(3, 1, 0));
        let t = a.open(5, "u");
        assert!(a.session(&t).is_none(), "idle 0 expires at once");
        let a = Auth::new(60, throttle(3, 1, 0));
        let t = a.open(5, "u");
        assert_eq!(a.session(&t).unwrap().user, 5);
        a.forget_user(5);
        assert!(a.session(&t).is_none());
        let t = a.open(6, "v");
        assert!(a.close(&t));
        assert!(!a.close(&t));
    }
}
