//! `brewq status` for a person: one line per server, then the rest, one line each.

use super::Health;

/// Prints the report.
pub fn print(health: &Health) {
    let up = health.servers.iter().filter(|server| server.up).count();
    println!("servers: {up} of {} up", health.servers.len());
    for server in &health.servers {
        let name = server.name.as_deref().unwrap_or("?");
        let state = if server.up { "up" } else { "DOWN" };
        let leader = if health.meta_leader.as_deref() == Some(name) { "  (JetStream meta leader)" } else { "" };
        let connections = server.connections.map(|count| format!("  {count} connections")).unwrap_or_default();
        println!("  {name:<4} {state:<4} {}  {}{connections}{leader}", server.url, server.health);
    }
    if let Some(stream) = &health.stream {
        let replicas: Vec<String> = stream
            .replicas
            .iter()
            .map(|replica| {
                let state = if replica.offline {
                    "offline"
                } else if replica.current {
                    "current"
                } else {
                    "catching up"
                };
                format!("{} {state}", replica.name)
            })
            .collect();
        let leader = stream.leader.as_deref().unwrap_or("none");
        println!("stream {}: leader {leader}; replicas {}", stream.name, replicas.join(", "));
    }
    let machines = &health.machines;
    let idle_fleet = match machines.taking_orders {
        0 => " (orders wait in the queue until one is resumed or started)",
        _ => "",
    };
    println!("machines: {} online of {}, {} taking orders{idle_fleet}", machines.online, machines.known, machines.taking_orders);
    if let Some(queue) = &health.queue {
        println!("queue: {} waiting, {} in flight, {} redelivered", queue.waiting, queue.in_flight, queue.redelivered);
    }
    match health.stock_alerts.as_slice() {
        [] => println!("stock: no alert"),
        alerts => {
            let listed: Vec<String> =
                alerts.iter().map(|alert| format!("{} ({} left, alert at {})", alert.ingredient, alert.on_hand, alert.low_at)).collect();
            println!("stock: LOW {}", listed.join(", "));
        }
    }
    if let Some(count) = health.dead_letters {
        println!("failed orders waiting: {count}");
    }
    if let Some(reconciled) = &health.reconciled {
        print_reconciled(reconciled);
    }
    for error in &health.errors {
        println!("cannot read: {error}");
    }
}

/// One line: what the reconciler settled, and its latest entry.
fn print_reconciled(reconciled: &super::ReconcilerHealth) {
    let last = reconciled.last.as_ref().map(|entry| {
        let at = brewq_protocol::rfc3339(entry.at);
        format!("; last {at}, {} {}", entry.action, entry.target)
    });
    println!(
        "leaked stock settled by the controllers: {} released, {} committed{}",
        reconciled.released,
        reconciled.committed,
        last.unwrap_or_default()
    );
}
