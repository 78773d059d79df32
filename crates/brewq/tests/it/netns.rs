//! A host of its own for one nats-server: a network namespace joined to this machine by a
//! veth pair, with addresses on a /24 that exists only between the two ends. Cutting the
//! link cuts that host off from its peers and clients, as a network partition would.
//! Made by the test, removed when dropped.

use std::process::Command;

/// One namespace and its link.
pub struct Host {
    pub netns: String,
    link: String,
    /// This machine's end of the link (the other nodes listen here).
    pub outside: String,
    /// The namespace's end of the link (its node listens here).
    pub inside: String,
}

/// Runs `ip args...`; an error carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|error| format!("ip: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

impl Host {
    /// Makes the namespace and its link; an error says why it cannot (no privilege, no `ip`).
    pub fn create() -> Result<Host, String> {
        let tag = format!("{:04x}", rand::random::<u16>());
        let subnet = u8::try_from(u16::from_str_radix(&tag, 16).unwrap_or(0) % 250).unwrap_or(0) + 1;
        let host = Host {
            netns: format!("bq{tag}"),
            link: format!("bq{tag}o"),
            outside: format!("10.199.{subnet}.1"),
            inside: format!("10.199.{subnet}.2"),
        };
        let inner = format!("bq{tag}i");
        ip(&["netns", "add", &host.netns])?;
        ip(&["link", "add", &host.link, "type", "veth", "peer", "name", &inner])?;
        ip(&["link", "set", &inner, "netns", &host.netns])?;
        ip(&["addr", "add", &format!("{}/24", host.outside), "dev", &host.link])?;
        ip(&["link", "set", &host.link, "up"])?;
        ip(&["netns", "exec", &host.netns, "ip", "addr", "add", &format!("{}/24", host.inside), "dev", &inner])?;
        ip(&["netns", "exec", &host.netns, "ip", "link", "set", &inner, "up"])?;
        ip(&["netns", "exec", &host.netns, "ip", "link", "set", "lo", "up"])?;
        Ok(host)
    }

    /// Cuts the link.
    pub fn cut(&self) {
        ip(&["link", "set", &self.link, "down"]).expect("link down");
    }

    /// Restores it.
    pub fn heal(&self) {
        ip(&["link", "set", &self.link, "up"]).expect("link up");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the link, and so the whole veth pair.
        let _ = ip(&["netns", "del", &self.netns]);
        let _ = ip(&["link", "del", &self.link]);
    }
}
