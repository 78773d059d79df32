//! Every NATS subject, stream, consumer and bucket name brewq uses. Subject strings exist
//! nowhere else in the code base.

/// Request/reply: a customer's order (JSON [`crate::OrderRequest`]) to the controllers.
pub const ORDER_REQUESTS: &str = "coffee.web.requests";
/// Request/reply: cancel a queued order; the payload is the order id.
pub const ORDER_CANCEL: &str = "coffee.web.cancel";
/// Request/reply: a machine asks the controllers to change an order's status
/// ([`crate::OrderUpdate`]), on `coffee.records.update.<machine>` ([`order_updates_from`]):
/// each machine's credential may publish only under its own number, so the subject tells the
/// controllers which machine asks, as the servers enforce it. Outside `coffee.orders.*` so the
/// stream does not capture it.
pub const ORDER_UPDATES: &str = "coffee.records.update.*";

/// The subject on which machine `machine_id` sends its order updates.
pub fn order_updates_from(machine_id: u32) -> String {
    format!("coffee.records.update.{machine_id}")
}

/// The machine whose subject `subject` is, for [`ORDER_UPDATES`]; `None` for any other.
pub fn machine_updating(subject: &str) -> Option<u32> {
    subject.strip_prefix("coffee.records.update.")?.parse().ok()
}
/// Queue group shared by all controller instances.
pub const CONTROLLER_QUEUE: &str = "controllers";
/// Controllers only: "I took this order request" (a request's reference,
/// [`crate::ids::RequestRef`]), so that the others, standing by for it, let it go.
pub const ORDER_TAKEN: &str = "coffee.controllers.taken";

/// The work-queue stream of accepted orders.
pub const ORDERS_STREAM: &str = "coffee-orders";
/// Subjects captured by [`ORDERS_STREAM`].
pub const ORDERS_SUBJECTS: &str = "coffee.orders.*";
/// The durable pull consumer shared by every coffee maker.
pub const MAKERS_CONSUMER: &str = "coffeeMakers";

/// Subject an accepted order is published on: `coffee.orders.<bean>`.
pub fn order_subject(bean: crate::Bean) -> String {
    format!("coffee.orders.{}", bean.as_str())
}

/// Request/reply: stock commands ([`crate::StockCommand`]) to the stock managers, one subject
/// per operation (`coffee.stock.reserve`, `.commit`, `.release`, `.restock`, `.read`) so that
/// each role may send only the operations it needs.
pub const STOCK_SUBJECTS: &str = "coffee.stock.*";

/// The subject of a stock command.
pub fn stock_subject(command: &crate::StockCommand) -> String {
    format!("coffee.stock.{}", command.op())
}
/// Queue group shared by all stock-manager instances.
pub const STOCK_QUEUE: &str = "stock";

/// KV bucket of the original demo: holds [`PENDING_KEY`].
pub const VALUES_BUCKET: &str = "orders-values";
/// Key of the pending-order count (waiting + being brewed), as a decimal string. brewq itself
/// reads the work queue instead; the controllers keep this key written because it is the
/// original demo's contract (a page or script of the demo reads it).
pub const PENDING_KEY: &str = "orders.pending";

/// KV bucket of order records ([`crate::OrderRecord`]), keyed by order id.
pub const ORDERS_BUCKET: &str = "coffee-order-records";
/// KV bucket mapping idempotency keys to order ids.
pub const IDEMPOTENCY_BUCKET: &str = "coffee-idempotency";
/// KV bucket of the stock: [`STOCK_KEY`] plus one reservation per order.
pub const STOCK_BUCKET: &str = "coffee-stock";
/// Key of the stock levels document in [`STOCK_BUCKET`].
pub const STOCK_KEY: &str = "levels";
/// KV bucket of machine heartbeats ([`crate::MachineHeartbeat`]), keyed `machine.<id>`.
pub const MACHINES_BUCKET: &str = "coffee-machines";

/// The buckets whose keys any replica may answer for, a moment behind the last write (the
/// others are read from their stream's leader, one key at a time; every bucket a service reads
/// whole allows direct gets, which any replica answers, for that read).
pub const READ_ANY_REPLICA: &[&str] = &[VALUES_BUCKET, MACHINES_BUCKET];

/// Key of an order's reservation in [`STOCK_BUCKET`].
pub fn reservation_key(order_id: &str) -> String {
    format!("reservation.{order_id}")
}

/// Request/reply: an operator's command ([`crate::MachineCommand`]) to one machine.
pub fn machine_control(machine_id: u32) -> String {
    format!("coffee.machines.{machine_id}.control")
}

/// Every machine's control subject.
pub const MACHINE_CONTROL_SUBJECTS: &str = "coffee.machines.*.control";

/// The audit stream and its subjects (`coffee.audit.<action>`).
pub const AUDIT_STREAM: &str = "coffee-audit";
/// Subjects captured by [`AUDIT_STREAM`].
pub const AUDIT_SUBJECTS: &str = "coffee.audit.>";

/// Subject of an audit entry for `action`.
pub fn audit_subject(action: &str) -> String {
    format!("coffee.audit.{action}")
}

/// KV bucket of failed orders waiting for an operator ([`crate::DeadLetter`]), by order id.
pub const DEAD_LETTERS_BUCKET: &str = "coffee-dead-letters";
/// Request/reply (operator): queue a failed order again as a new order; payload: the order id.
pub const DEAD_LETTER_RETRY: &str = "coffee.admin.retry";
/// Request/reply (operator): give up on a failed order; payload: the order id.
pub const DEAD_LETTER_GIVE_UP: &str = "coffee.admin.give-up";

/// KV bucket of the operator's sessions: key the SHA-256 of the cookie's token (the bucket
/// never holds a token), value the user; entries expire with the bucket's age limit, and a
/// logout deletes one, "log out everywhere" purges them all.
pub const SESSIONS_BUCKET: &str = "coffee-operator-sessions";

/// KV bucket: the operator's hold on each machine (pause, out of service), under
/// [`machine_key`], kept until resumed so that a machine restarting keeps it.
pub const MACHINE_HOLDS_BUCKET: &str = "coffee-machine-holds";

/// Key of a machine's heartbeat in [`MACHINES_BUCKET`], and of its hold in
/// [`MACHINE_HOLDS_BUCKET`].
pub fn machine_key(machine_id: u32) -> String {
    format!("machine.{machine_id}")
}

/// NATS header carrying the order id across services, for tracing.
pub const ORDER_ID_HEADER: &str = "Brewq-Order-Id";
/// Header of an order request naming the request itself (1 to 64 letters, digits, `-`, `_`),
/// for a sender that sends the same request more than once, from inboxes of its own each
/// time (the web shop, through two connections): the controllers take it for the reply
/// subject in the request's reference ([`crate::ids::RequestRef`]), so every copy is the same
/// order, with nothing stored. Without it, the reply subject names the request.
pub const REQUEST_ID_HEADER: &str = "Brewq-Request-Id";

/// Stream that `brewq bench` publishes to, to measure raw JetStream (made and deleted by it).
pub const BENCH_STREAM: &str = "brewq-bench";
/// Subjects captured by [`BENCH_STREAM`].
pub const BENCH_SUBJECTS: &str = "coffee.bench.*";
/// Subject of the raw publishes.
pub const BENCH_PUBLISH: &str = "coffee.bench.publish";
/// The consumer `brewq bench` takes raw orders from [`BENCH_STREAM`] with, as machines do.
pub const BENCH_CONSUMER: &str = "bench-takers";
/// Where `brewq bench` queues raw orders for its takers.
pub const BENCH_QUEUE: &str = "coffee.bench.queue";
/// Acks of the raw takers.
pub const BENCH_ACKS: &str = "$JS.ACK.brewq-bench.>";
/// Bucket that `brewq bench` uses to measure a raw KV compare-and-swap (made and deleted by it).
pub const BENCH_BUCKET: &str = "coffee-bench";

/// Request/reply: one order as its customer sees it ([`crate::OrderLookup`]); the payload is
/// the order id. Whoever holds the id may read the order; nothing lists them.
pub const ORDER_READ: &str = "coffee.web.order";
/// Request/reply: the queue and the fleet as the shop shows them ([`crate::ShopView`]).
pub const SHOP_READ: &str = "coffee.web.shop";
/// Request/reply: the pickup board ([`crate::BoardLookup`]): tickets and first names, no ids.
pub const BOARD_READ: &str = "coffee.web.board";
/// Request/reply (operator): the shop's last hour ([`crate::ActivityLookup`]).
pub const ACTIVITY_READ: &str = "coffee.admin.activity";

/// Core NATS, no reply: the controllers say here that an order's record changed, on
/// `coffee.web.changed.<order reference>` (see [`crate::ids::order_ref`]) with the new status
/// as payload, so that a page following the order asks for it at once. The subject carries
/// the reference, never the id: whoever listens to all of them learns that some order moved,
/// not which one nor whose.
pub const ORDER_CHANGES: &str = "coffee.web.changed.*";

/// The subject on which a change of the order `order_id` is announced.
pub fn order_changed(order_id: &str) -> String {
    format!("coffee.web.changed.{}", crate::ids::order_ref(order_id))
}

/// The roles that connect to NATS, by the name of their credential and inbox prefix.
pub mod roles {
    pub const PROVISIONER: &str = "provisioner";
    pub const CONTROLLER: &str = "controller";
    pub const STOCK: &str = "stock";
    pub const MAKER: &str = "maker";
    /// The public web shop: a customer's rights.
    pub const WEB: &str = "web";
    /// The operator's web process: the operator's actions.
    pub const OPERATOR: &str = "operator";
    /// The operator's command line.
    pub const ADMIN: &str = "admin";

    /// The three accounts of a shop, each role's users in one (SECURITY.md, "Accounts"). The
    /// servers map an answer between two of them back to its requester on a reply subject of
    /// their own ([`super::IMPORTED_REPLY_PREFIX`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Account {
        /// The shop's streams and buckets (`COFFEE`, `SHOP-<n>`): the provisioner, the admin,
        /// and the leaf link of a shop.
        Streams,
        /// The services and their callers (`<shop>-SERVICES`): no stream of its own, the
        /// streams reached through imports of exactly what these roles use.
        Services,
        /// The machines (`<shop>-MACHINES`): the same, for what a machine does.
        Machines,
    }

    /// The account of `role`'s users.
    pub fn account_of(role: &str) -> Account {
        match role {
            PROVISIONER | ADMIN => Account::Streams,
            MAKER => Account::Machines,
            _ => Account::Services,
        }
    }
}

/// On a hub, in each shop's account: the shop's order records, machines, stock and failed
/// orders, sourced from the shop's JetStream domain, the latest of each key under
/// `chain.<what>.<key>` ([`chain_subject`]). It captures no subject of its own: nothing published
/// on the hub lands in it, and the shop's own writes are not stored twice.
pub const CHAIN_STREAM: &str = "chain";

/// On a hub, in each shop's account: what the chain's operator sends down to the shop
/// (restocks and alert levels on [`CHAIN_COMMANDS`], machine commands on
/// [`CHAIN_MACHINE_COMMANDS`]), kept until the shop has it.
pub const CHAIN_COMMANDS_STREAM: &str = "chain-commands";
/// Where the chain's operator sends a shop its stock commands ([`crate::StockCommand`]), on the
/// hub.
pub const CHAIN_COMMANDS: &str = "chain.commands";
/// Where the chain's operator sends a shop its machine commands
/// ([`crate::machine::ChainMachineCommand`]), on the hub.
pub const CHAIN_MACHINE_COMMANDS: &str = "chain.commands.machines";
/// In a shop's domain: [`CHAIN_COMMANDS_STREAM`], sourced from the hub whenever the link is up,
/// so a command sent during a cut arrives when the link returns.
pub const SHOP_COMMANDS_STREAM: &str = "shop-commands";
/// The stock managers' consumer of [`SHOP_COMMANDS_STREAM`] (its stock commands): one command
/// at a time, in order.
pub const SHOP_COMMANDS_CONSUMER: &str = "stock";
/// The shop's operator process's consumer of [`SHOP_COMMANDS_STREAM`] (its machine commands):
/// one at a time, in order.
pub const SHOP_MACHINE_COMMANDS_CONSUMER: &str = "machines";

/// What [`CHAIN_STREAM`] keeps, as `(bucket, what)`: `$KV.<bucket>.<key>` of the shop becomes
/// `chain.<what>.<key>` on the hub.
pub const CHAIN_SOURCES: &[(&str, &str)] =
    &[(ORDERS_BUCKET, "orders"), (MACHINES_BUCKET, "machines"), (STOCK_BUCKET, "stock"), (DEAD_LETTERS_BUCKET, "failed")];

/// The subject of `key` of `what` (`orders`, `machines`, `stock`, `failed`) in [`CHAIN_STREAM`].
pub fn chain_subject(what: &str, key: &str) -> String {
    format!("chain.{what}.{key}")
}

/// The prefix of every reply subject of `role`: `_INBOX_<role>`. Each role reads replies
/// under its own prefix only, and services answer only under the prefixes of their callers.
pub fn inbox_prefix(role: &str) -> String {
    format!("_INBOX_{role}")
}

/// The prefix of the reply subjects the servers make for a request that crosses from one
/// account to another through an import: the answer goes there, and the servers map it back to
/// the requester's own reply subject.
pub const IMPORTED_REPLY_PREFIX: &str = "_R_";

/// The inbox prefix of machine `machine_id`: under the makers' prefix, and its own, so that no
/// machine reads another's replies or deliveries.
pub fn machine_inbox_prefix(machine_id: u32) -> String {
    format!("{}.{machine_id}", inbox_prefix(roles::MAKER))
}

/// The roles that may send requests on `subject`, one of the services' subjects: the servers
/// let no one else publish there, and the service answers on no one else's inbox. Empty for a
/// subject that is no service's.
pub fn callers(subject: &str) -> &'static [&'static str] {
    use roles::*;
    match subject {
        ORDER_REQUESTS => &[WEB, ADMIN],
        ORDER_CANCEL | ORDER_READ | SHOP_READ | BOARD_READ => &[WEB, OPERATOR, ADMIN],
        ACTIVITY_READ => &[OPERATOR, ADMIN],
        DEAD_LETTER_RETRY | DEAD_LETTER_GIVE_UP => &[OPERATOR, ADMIN],
        "coffee.stock.reserve" => &[CONTROLLER],
        "coffee.stock.commit" | "coffee.stock.release" => &[CONTROLLER],
        "coffee.stock.read" => &[WEB, OPERATOR, ADMIN],
        "coffee.stock.restock" | "coffee.stock.threshold" => &[OPERATOR, ADMIN],
        _ if is_machine_control(subject) => &[OPERATOR, ADMIN],
        _ if machine_updating(subject).is_some() => &[MAKER],
        _ => &[],
    }
}

/// Every service subject with the role that serves it, for the permissions: a responder may
/// publish on the inboxes of the callers of what it serves, and nowhere else of theirs.
pub const SERVICES: &[(&str, &str)] = &[
    (ORDER_REQUESTS, roles::CONTROLLER),
    (ORDER_CANCEL, roles::CONTROLLER),
    (ORDER_READ, roles::CONTROLLER),
    (SHOP_READ, roles::CONTROLLER),
    (BOARD_READ, roles::CONTROLLER),
    (ACTIVITY_READ, roles::CONTROLLER),
    (ORDER_UPDATES, roles::CONTROLLER),
    (DEAD_LETTER_RETRY, roles::CONTROLLER),
    (DEAD_LETTER_GIVE_UP, roles::CONTROLLER),
    ("coffee.stock.reserve", roles::STOCK),
    ("coffee.stock.commit", roles::STOCK),
    ("coffee.stock.release", roles::STOCK),
    ("coffee.stock.read", roles::STOCK),
    ("coffee.stock.restock", roles::STOCK),
    ("coffee.stock.threshold", roles::STOCK),
    (MACHINE_CONTROL_SUBJECTS, roles::MAKER),
];

/// The subscription a service takes to serve `subject`: the stock manager serves all of
/// [`STOCK_SUBJECTS`] with one.
pub fn subscription_serving(subject: &str) -> &str {
    if subject.starts_with("coffee.stock.") { STOCK_SUBJECTS } else { subject }
}

fn is_machine_control(subject: &str) -> bool {
    let mut tokens = subject.split('.');
    matches!(
        (tokens.next(), tokens.next(), tokens.next(), tokens.next(), tokens.next()),
        (Some("coffee"), Some("machines"), Some(id), Some("control"), None) if !id.is_empty()
    )
}

/// Whether a service that received a request on `subject` may answer on `reply`: a plain
/// subject (no wildcard, no space) under the inbox prefix of one of the subject's callers. A
/// request whose reply points anywhere else (a key, a stream, another role's inbox) is
/// someone steering the service's rights, and gets no answer.
pub fn may_answer(subject: &str, reply: &str) -> bool {
    let plain = !reply.is_empty()
        && reply.split('.').all(|token| !token.is_empty() && token != "*" && token != ">")
        && !reply.contains(|c: char| c.is_whitespace() || c.is_control());
    let under = |prefix: &str| reply.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.') && rest.len() > 1);
    let Some(server) = server_of(subject) else { return false };
    let server = roles::account_of(server);
    // A caller in another account reaches the service through an import: the servers map the
    // answer back to it, from a reply subject they make, which the caller cannot choose.
    plain
        && callers(subject).iter().any(|&caller| match roles::account_of(caller) == server {
            true => under(&inbox_prefix(caller)),
            false => under(IMPORTED_REPLY_PREFIX),
        })
}

/// The role that serves `subject`, from [`SERVICES`].
pub fn server_of(subject: &str) -> Option<&'static str> {
    let matches = |pattern: &str| {
        let (mut pattern, mut subject) = (pattern.split('.'), subject.split('.'));
        loop {
            match (pattern.next(), subject.next()) {
                (None, None) => return true,
                (Some("*"), Some(token)) if !token.is_empty() => {}
                (Some(expected), Some(token)) if expected == token => {}
                _ => return false,
            }
        }
    };
    SERVICES.iter().find(|(pattern, _)| matches(pattern)).map(|&(_, server)| server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_answers_its_callers_inboxes_only() {
        assert!(may_answer(ORDER_REQUESTS, "_INBOX_web.abc.1"));
        assert!(may_answer("coffee.stock.reserve", "_INBOX_controller.x"));
        assert!(may_answer("coffee.machines.3.control", "_R_.a1b2c3.d4"));
        assert!(may_answer("coffee.records.update.3", "_R_.a1b2c3.d4"));
        // The admin is in the streams' account: its requests come through imports.
        assert!(may_answer(ORDER_REQUESTS, "_R_.a1b2c3.d4"));
        assert!(may_answer("coffee.stock.read", "_R_.a1b2c3.d4"));
        for (subject, reply) in [
            ("coffee.stock.reserve", "_INBOX_web.x"),
            ("coffee.stock.read", "$KV.coffee-stock.levels"),
            ("coffee.stock.read", "coffee.orders.arabica"),
            ("coffee.stock.read", "$JS.API.STREAM.DELETE.coffee-orders"),
            (ORDER_REQUESTS, "_INBOX_webby.x"),
            (ORDER_REQUESTS, "_INBOX_web"),
            (ORDER_REQUESTS, "_INBOX_web."),
            (ORDER_REQUESTS, "_INBOX_web.*"),
            (ORDER_REQUESTS, "_INBOX_web.>"),
            (ORDER_REQUESTS, "_INBOX_web.a b"),
            (ORDER_REQUESTS, "_INBOX_web..a"),
            ("coffee.records.update.3", "_INBOX_web.x"),
            // A request between machines and the shop comes through an import; anything else
            // on its subjects was put there by someone else (a delivery pointed at it).
            ("coffee.records.update.3", "_INBOX_maker.3.x"),
            ("coffee.records.update.3", "$JS.ACK.coffee-orders.coffeeMakers.1.2.3.4.5"),
            ("coffee.records.update.3", "_R_"),
            ("coffee.records.update.3", "_R_."),
            ("coffee.machines.3.control", "_INBOX_operator.x"),
            ("coffee.machines.3.control", "$JS.ACK.coffee-orders.coffeeMakers.1.2.3.4.5"),
            ("coffee.machines.3.control", "_INBOX_web.x"),
            ("coffee.machines.3.4.control", "_INBOX_admin.x"),
            ("coffee.nothing", "_INBOX_admin.x"),
            // Only the controllers reserve, from the services' own account.
            ("coffee.stock.reserve", "_R_.a1b2c3.d4"),
            (ORDER_REQUESTS, "_INBOX_admin.x"),
        ] {
            assert!(!may_answer(subject, reply), "{subject} answered on {reply}");
        }
    }

    #[test]
    fn every_service_subject_has_callers() {
        for (subject, _) in SERVICES {
            let example = subject.replace('*', "1");
            assert!(!callers(&example).is_empty(), "{subject}");
        }
    }
}
