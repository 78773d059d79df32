//! Hosts on a local network made by the test: a bridge in this machine's namespace and one
//! network namespace per host, each joined to the bridge by a veth pair, all on one /24 that
//! nothing else uses. The hosts reach each other through the bridge (no forwarding, no
//! loopback), this machine reaches them at the bridge's address, and cutting a host's veth
//! takes it off the network. Everything made is removed when the `Lan` is dropped, in reverse
//! order, even when the test fails half-way.

/// Runs `ip args...`; the error says what failed and why.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let output = std::process::Command::new("ip").args(args).output().map_err(|error| format!("ip: {error}"))?;
    if output.status.success() { Ok(()) } else { Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim())) }
}

/// The network and its hosts.
pub struct Lan {
    /// This machine's address on the network (the bridge's).
    pub gateway: String,
    /// Each host's address, in order (`10.198.x.1`, `.2`, ...).
    pub addresses: Vec<String>,
    /// Each host's namespace, in order.
    pub namespaces: Vec<String>,
    /// This machine's end of each host's veth pair.
    links: Vec<String>,
    /// What was made, undone in reverse order on drop.
    made: Vec<Made>,
}

enum Made {
    Namespace(String),
    Link(String),
}

impl Lan {
    /// Makes the bridge and `hosts` hosts; an error says why it cannot (no privilege, no `ip`).
    pub fn create(hosts: usize) -> Result<Lan, String> {
        let tag = format!("{:04x}", rand::random::<u16>());
        let subnet = free_subnet()?;
        let gateway = format!("{subnet}.254");
        let mut lan = Lan { gateway: gateway.clone(), addresses: Vec::new(), namespaces: Vec::new(), links: Vec::new(), made: Vec::new() };
        let bridge = format!("bq{tag}br");
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        lan.made.push(Made::Link(bridge.clone()));
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for index in 1..=hosts {
            lan.add_host(&tag, &bridge, index, &format!("{subnet}.{index}"))?;
        }
        Ok(lan)
    }

    /// Makes host `index`: its namespace, its veth pair (one end on the bridge), its address.
    fn add_host(&mut self, tag: &str, bridge: &str, index: usize, address: &str) -> Result<(), String> {
        let (netns, outside, inside) = (format!("bq{tag}h{index}"), format!("bq{tag}h{index}o"), format!("bq{tag}h{index}i"));
        ip(&["netns", "add", &netns])?;
        self.made.push(Made::Namespace(netns.clone()));
        ip(&["link", "add", &outside, "type", "veth", "peer", "name", &inside])?;
        self.made.push(Made::Link(outside.clone()));
        ip(&["link", "set", &inside, "netns", &netns])?;
        ip(&["link", "set", &outside, "master", bridge])?;
        ip(&["link", "set", &outside, "up"])?;
        ip(&["netns", "exec", &netns, "ip", "addr", "add", &format!("{address}/24"), "dev", &inside])?;
        ip(&["netns", "exec", &netns, "ip", "link", "set", &inside, "up"])?;
        ip(&["netns", "exec", &netns, "ip", "link", "set", "lo", "up"])?;
        self.addresses.push(address.to_owned());
        self.namespaces.push(netns);
        self.links.push(outside);
        Ok(())
    }

    /// Takes host `index` off the network.
    pub fn cut(&self, index: usize) {
        ip(&["link", "set", &self.links[index], "down"]).expect("link down");
    }

    /// Puts it back.
    pub fn heal(&self, index: usize) {
        ip(&["link", "set", &self.links[index], "up"]).expect("link up");
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of a veth pair, and so the pair; the links are
        // deleted as well in case a namespace outlives its name (a process still inside).
        for made in self.made.drain(..).rev() {
            let _ = match made {
                Made::Namespace(name) => ip(&["netns", "del", &name]),
                Made::Link(name) => ip(&["link", "del", &name]),
            };
        }
    }
}

/// A `10.198.x` prefix with no address or route on this machine yet.
fn free_subnet() -> Result<String, String> {
    for _ in 0..50 {
        let subnet = format!("10.198.{}", rand::random_range(1..=250u8));
        let prefix = format!("{subnet}.0/24");
        if unused(&["route", "show", &prefix])? && unused(&["-o", "addr", "show", "to", &prefix])? {
            return Ok(subnet);
        }
    }
    Err("no free 10.198.x.0/24 subnet".into())
}

/// True when `ip args...` succeeds and lists nothing.
fn unused(args: &[&str]) -> Result<bool, String> {
    let output = std::process::Command::new("ip").args(args).output().map_err(|error| format!("ip: {error}"))?;
    Ok(output.status.success() && output.stdout.is_empty())
}
