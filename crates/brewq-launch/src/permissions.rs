//! Least privilege: what each role may publish and subscribe to, down to the JetStream API
//! subjects. The scopes of the roles' signing keys (in the account's JWT) and SECURITY.md are
//! both generated from [`rules`], so the two cannot drift. A machine's rights name its own
//! number, the `machine` tag of its credential, which the servers fill in: `{{tag(machine)}}`.

use brewq_protocol::subjects;

use crate::keys::{Account, Role};

/// Publish or subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Publish,
    Subscribe,
}

/// One allowed subject for one role, with the reason it is needed.
#[derive(Debug, Clone)]
pub struct Rule {
    pub role: Role,
    pub direction: Direction,
    pub subject: String,
    pub why: &'static str,
}

/// What a role may do, as a server config needs it.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

const API: &str = "$JS.API";

/// The tag of a machine's credential that holds its number (`machine:3`).
pub const MACHINE_TAG: &str = "machine";

/// `pattern` with its `*` token standing for the machine's own number, filled in by the
/// servers from the credential's tag.
fn own_machine(pattern: &str) -> String {
    pattern.replacen('*', &format!("{{{{tag({MACHINE_TAG})}}}}"), 1)
}

fn kv_stream(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// Bind to a bucket and read keys from its leader (direct gets off).
fn kv_read(role: Role, bucket: &str, rules: &mut Vec<Rule>) {
    use Direction::Publish;
    let stream = kv_stream(bucket);
    rules.push(rule(role, Publish, format!("{API}.STREAM.INFO.{stream}"), "bind to the bucket"));
    rules.push(rule(role, Publish, format!("{API}.STREAM.MSG.GET.{stream}"), "read a key from the leader"));
    rules.push(rule(role, Publish, format!("{API}.DIRECT.GET.{stream}.>"), "read a key from any replica"));
}

/// Read every key of a bucket, or follow it, in batches of direct gets (no consumer: the right
/// to create one is the right to choose where the servers deliver, and store, what it reads).
fn kv_scan(role: Role, bucket: &str, rules: &mut Vec<Rule>) {
    let stream = kv_stream(bucket);
    rules.push(rule(role, Direction::Publish, format!("{API}.DIRECT.GET.{stream}"), "read or follow every key, a batch at a time"));
}

/// [`kv_scan`], and watch a bucket as async-nats does (an ordered push consumer, with its flow
/// control): for the admin's command line only.
fn kv_watch(role: Role, bucket: &str, rules: &mut Vec<Rule>) {
    use Direction::Publish;
    kv_scan(role, bucket, rules);
    let stream = kv_stream(bucket);
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.CREATE.{stream}"), "watch every key"));
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.CREATE.{stream}.>"), "watch every key (named)"));
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.MSG.NEXT.{stream}.*"), "read them a batch at a time"));
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.DELETE.{stream}.>"), "stop watching"));
    rules.push(rule(role, Publish, format!("$JS.FC.{stream}.>"), "flow control of a watch"));
}

/// Write keys of a bucket (`key` may be a wildcard).
fn kv_write(role: Role, bucket: &str, key: &str, rules: &mut Vec<Rule>) {
    rules.push(rule(role, Direction::Publish, format!("$KV.{bucket}.{key}"), "write keys"));
}

/// Take a shop's commands from its chain through `consumer` of the shop's commands stream, one
/// at a time, and ack them (both ack formats).
fn shop_commands(role: Role, consumer: &str, why: &'static str, rules: &mut Vec<Rule>) {
    use Direction::Publish;
    let commands = format!("{}.{consumer}", subjects::SHOP_COMMANDS_STREAM);
    rules.push(rule(role, Publish, format!("{API}.STREAM.INFO.{}", subjects::SHOP_COMMANDS_STREAM), why));
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.INFO.{commands}"), why));
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.MSG.NEXT.{commands}"), why));
    rules.push(rule(role, Publish, format!("$JS.ACK.{commands}.>"), why));
    rules.push(rule(role, Publish, format!("$JS.ACK.*.*.{commands}.>"), why));
}

fn rule(role: Role, direction: Direction, subject: impl Into<String>, why: &'static str) -> Rule {
    Rule { role, direction, subject: subject.into(), why }
}

/// Each service's subject: its callers may publish there, the role serving it subscribes, and
/// may publish on its callers' inboxes (no `allow_responses`: with it, the servers would let a
/// requester name any reply subject, and the service would write there with its own rights).
fn services(rules: &mut Vec<Rule>) {
    use Direction::{Publish, Subscribe};
    let mut answers: Vec<(Role, String)> = Vec::new();
    for &(subject, server) in subjects::SERVICES {
        let server = role_named(server);
        let mut subscription = subjects::subscription_serving(subject).to_owned();
        if server == Role::Maker {
            subscription = own_machine(&subscription);
        }
        if !rules.iter().any(|known| known.role == server && known.direction == Subscribe && known.subject == subscription) {
            rules.push(rule(server, Subscribe, subscription, "serve these requests"));
        }
        for caller in subjects::callers(&subject.replace('*', "1")) {
            let caller = role_named(caller);
            let subject = if caller == Role::Maker { own_machine(subject) } else { subject.to_owned() };
            rules.push(rule(caller, Publish, subject, "send these requests"));
            // A caller in another account reaches the service through an import, whose
            // answers go to a reply subject the servers make (`_R_.…`) and map back.
            let inbox = if caller.account() != server.account() {
                format!("{}.>", subjects::IMPORTED_REPLY_PREFIX)
            } else {
                format!("{}.>", subjects::inbox_prefix(caller.as_str()))
            };
            if !answers.contains(&(server, inbox.clone())) {
                answers.push((server, inbox));
            }
        }
    }
    for (server, inbox) in answers {
        let why = if inbox.starts_with(subjects::IMPORTED_REPLY_PREFIX) {
            "answer its callers in other accounts, on the reply subjects the servers make"
        } else {
            "answer its callers, on their inboxes only"
        };
        rules.push(rule(server, Publish, inbox, why));
    }
}

/// One subject an account imports from another, and whether an answer is several messages
/// (a pull's deliveries, a batch of direct gets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub subject: String,
    pub from: Account,
    pub streamed: bool,
}

/// What `into` imports: each subject its roles publish to that none of its own roles serves or
/// listens to (for any machine, where a right names the machine's own number: that number is
/// held by the machine's rights in its own account), from the account that serves it, or from
/// the streams' account. With them, into an account without streams, `$JS.API.INFO`, which
/// none of its roles may call: an account that imports it gets no JetStream answerer of its own
/// from the servers, which would otherwise answer every JetStream call of its users, before the
/// streams' account, that JetStream is off.
pub fn imports(into: Account) -> Vec<Import> {
    let rules = rules();
    let own = |rule: &&Rule| rule.role.account() == into;
    let mut imports = Vec::new();
    if into != Account::Streams {
        imports.push(Import { subject: format!("{API}.INFO"), from: Account::Streams, streamed: false });
    }
    for rule in rules.iter().filter(own).filter(|rule| rule.direction == Direction::Publish) {
        let subject = rule.subject.replace(&format!("{{{{tag({MACHINE_TAG})}}}}"), "*");
        let answer = subject.starts_with("_INBOX") || subject.starts_with(subjects::IMPORTED_REPLY_PREFIX);
        let heard = rules.iter().filter(own).any(|other| other.direction == Direction::Subscribe && other.subject == subject);
        let from = match subjects::server_of(&subject) {
            Some(server) => role_named(server).account(),
            None if answer || heard => continue,
            None => Account::Streams,
        };
        let streamed = subject.contains(".CONSUMER.MSG.NEXT.") || is_direct_batch(&subject);
        let import = Import { subject: widened(subject), from, streamed };
        if from != into && !imports.contains(&import) {
            imports.push(import);
        }
    }
    without_covered(imports)
}

/// What `from` exports: everything another account imports from it.
pub fn exports(from: Account) -> Vec<Import> {
    let mut exports: Vec<Import> = Vec::new();
    for into in [Account::Streams, Account::Services, Account::Machines] {
        for import in imports(into).into_iter().filter(|import| import.from == from) {
            if !exports.contains(&import) {
                exports.push(import);
            }
        }
    }
    without_covered(exports)
}

/// `subject` with its last token a wildcard, if it has none: an answer whose requester names a
/// subject of its own account as its reply is delivered there, and an import of that subject
/// would carry it on. The servers carry it under the import's own subject when the import
/// names a plain subject (a JetStream answer pointed at `$KV.orders-values.orders.pending` was
/// stored there), and under the reply subject they made (`_R_.…`), which nothing stores, when
/// it has a wildcard. The roles' rights still say which of the subjects each may publish to.
/// `$JS.API.INFO` stays as it is: it changes nothing, and an account without JetStream must
/// import it by name.
fn widened(subject: String) -> String {
    let plain = subject.split('.').all(|token| token != "*" && token != ">");
    match subject.rsplit_once('.') {
        Some((head, _)) if plain && subject != format!("{API}.INFO") => format!("{head}.*"),
        _ => subject,
    }
}

/// A batch of direct gets, `$JS.API.DIRECT.GET.<stream>` with the request in the body (a get
/// of one key names it in the subject).
fn is_direct_batch(subject: &str) -> bool {
    subject.strip_prefix(&format!("{API}.DIRECT.GET.")).is_some_and(|stream| !stream.contains('.'))
}

/// `services` without those another one of the same account and kind covers (the controller's
/// audit subjects under the operator's `coffee.audit.>`).
fn without_covered(services: Vec<Import>) -> Vec<Import> {
    let kept = |import: &Import| {
        !services.iter().any(|other| {
            other != import && other.from == import.from && other.streamed == import.streamed && covers(&other.subject, &import.subject)
        })
    };
    services.iter().filter(|import| kept(import)).cloned().collect()
}

/// Whether every subject `subject` matches, `pattern` matches too.
fn covers(pattern: &str, subject: &str) -> bool {
    let (mut pattern, mut subject) = (pattern.split('.'), subject.split('.'));
    loop {
        match (pattern.next(), subject.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(token)) if token != ">" => {}
            (Some(expected), Some(token)) if expected == token => {}
            _ => return false,
        }
    }
}

fn role_named(name: &str) -> Role {
    *Role::ALL.iter().find(|role| role.as_str() == name).expect("every role named in the protocol exists")
}

/// Every allowed subject of every role.
pub fn rules() -> Vec<Rule> {
    use Direction::{Publish, Subscribe};
    let mut rules = Vec::new();
    for &role in Role::ALL {
        let inbox = match role {
            Role::Maker => own_machine(&format!("{}.*.>", subjects::inbox_prefix(role.as_str()))),
            _ => format!("{}.>", subjects::inbox_prefix(role.as_str())),
        };
        rules.push(rule(role, Subscribe, inbox, "its own replies, and no one else's"));
    }
    let consumer = format!("{}.{}", subjects::ORDERS_STREAM, subjects::MAKERS_CONSUMER);

    let provisioner = Role::Provisioner;
    rules.push(rule(provisioner, Publish, format!("{API}.>"), "create and update streams, consumers and buckets"));
    kv_write(provisioner, subjects::STOCK_BUCKET, subjects::STOCK_KEY, &mut rules);
    rules.push(rule(provisioner, Publish, subjects::BENCH_SUBJECTS, "measure raw JetStream publishes (`brewq bench`)"));
    rules.push(rule(provisioner, Publish, subjects::BENCH_ACKS, "ack raw takes from a work queue (`brewq bench`)"));
    kv_write(provisioner, subjects::BENCH_BUCKET, ">", &mut rules);

    services(&mut rules);

    let controller = Role::Controller;
    rules.push(rule(controller, Publish, subjects::ORDERS_SUBJECTS, "queue accepted orders"));
    rules.push(rule(controller, Publish, subjects::ORDER_CHANGES, "say that an order changed (by its reference)"));
    rules.push(rule(controller, Publish, subjects::ORDER_TAKEN, "tell the other controllers it took an order request"));
    rules.push(rule(controller, Subscribe, subjects::ORDER_TAKEN, "let go of the order requests another controller took"));
    rules.push(rule(controller, Publish, format!("{API}.CONSUMER.INFO.{consumer}"), "count pending orders"));
    rules.push(rule(controller, Publish, format!("{API}.STREAM.INFO.{}", subjects::ORDERS_STREAM), "an order's place in the queue"));
    rules.push(rule(
        controller,
        Publish,
        format!("{API}.STREAM.MSG.DELETE.{}", subjects::ORDERS_STREAM),
        "take a cancelled order off the queue",
    ));
    for bucket in [subjects::ORDERS_BUCKET, subjects::IDEMPOTENCY_BUCKET] {
        kv_read(controller, bucket, &mut rules);
        kv_write(controller, bucket, ">", &mut rules);
    }
    // The scan for customers' names to remove reads every record; the board follows them.
    kv_scan(controller, subjects::ORDERS_BUCKET, &mut rules);
    kv_read(controller, subjects::VALUES_BUCKET, &mut rules);
    kv_write(controller, subjects::VALUES_BUCKET, subjects::PENDING_KEY, &mut rules);
    kv_read(controller, subjects::DEAD_LETTERS_BUCKET, &mut rules);
    kv_write(controller, subjects::DEAD_LETTERS_BUCKET, ">", &mut rules);
    kv_read(controller, subjects::MACHINES_BUCKET, &mut rules);
    kv_scan(controller, subjects::MACHINES_BUCKET, &mut rules);
    kv_read(controller, subjects::MACHINE_HOLDS_BUCKET, &mut rules);
    kv_scan(controller, subjects::MACHINE_HOLDS_BUCKET, &mut rules);
    // The reconciler scans the reservations, looks for an unrecorded order's message in the
    // work queue, and records what it settles.
    kv_read(controller, subjects::STOCK_BUCKET, &mut rules);
    kv_scan(controller, subjects::STOCK_BUCKET, &mut rules);
    rules.push(rule(
        controller,
        Publish,
        format!("{API}.STREAM.MSG.GET.{}", subjects::ORDERS_STREAM),
        "find an unrecorded order in the queue",
    ));
    for action in brewq_protocol::audit::reconcile_actions() {
        rules.push(rule(controller, Publish, subjects::audit_subject(&action), "record the stock it gives back or commits"));
    }

    let stock_role = Role::Stock;
    kv_read(stock_role, subjects::STOCK_BUCKET, &mut rules);
    kv_write(stock_role, subjects::STOCK_BUCKET, ">", &mut rules);
    // In a shop of a chain: the chain's commands, one at a time.
    shop_commands(stock_role, subjects::SHOP_COMMANDS_CONSUMER, "take the chain's commands to the shop", &mut rules);

    let maker = Role::Maker;
    rules.push(rule(maker, Publish, format!("{API}.CONSUMER.INFO.{consumer}"), "bind to the work queue"));
    rules.push(rule(maker, Publish, format!("{API}.CONSUMER.MSG.NEXT.{consumer}"), "fetch one order"));
    rules.push(rule(maker, Publish, format!("$JS.ACK.{consumer}.>"), "ack, nak, in-progress, term"));
    rules.push(rule(maker, Publish, format!("$JS.ACK.*.*.{consumer}.>"), "the same, in the v2 ack format"));
    rules.push(rule(maker, Publish, format!("{API}.STREAM.INFO.{}", kv_stream(subjects::MACHINES_BUCKET)), "bind to the heartbeats"));
    kv_write(maker, subjects::MACHINES_BUCKET, &own_machine("machine.*"), &mut rules);
    kv_read(maker, subjects::MACHINE_HOLDS_BUCKET, &mut rules);
    kv_write(maker, subjects::MACHINE_HOLDS_BUCKET, &own_machine("machine.*"), &mut rules);

    // The public web shop has no rights beyond its services' subjects and its inbox: no
    // JetStream API at all (a JetStream API request answers on any reply subject its sender
    // names, with the servers' rights), no bucket, no stream.
    rules.push(rule(Role::Web, Subscribe, subjects::ORDER_CHANGES, "follow an order it shows as it changes"));

    let operator = Role::Operator;
    rules.push(rule(operator, Publish, subjects::AUDIT_SUBJECTS, "record its actions"));
    rules.push(rule(operator, Publish, format!("{API}.STREAM.MSG.GET.{}", subjects::AUDIT_STREAM), "read the audit trail"));
    rules.push(rule(operator, Publish, format!("{API}.STREAM.INFO.{}", subjects::AUDIT_STREAM), "read the audit trail"));
    kv_read(operator, subjects::DEAD_LETTERS_BUCKET, &mut rules);
    kv_scan(operator, subjects::DEAD_LETTERS_BUCKET, &mut rules);
    kv_read(operator, subjects::MACHINE_HOLDS_BUCKET, &mut rules);
    kv_scan(operator, subjects::MACHINE_HOLDS_BUCKET, &mut rules);
    kv_write(operator, subjects::MACHINE_HOLDS_BUCKET, "machine.*", &mut rules);
    kv_read(operator, subjects::MACHINES_BUCKET, &mut rules);
    kv_read(operator, subjects::SESSIONS_BUCKET, &mut rules);
    kv_write(operator, subjects::SESSIONS_BUCKET, "*", &mut rules);
    rules.push(rule(operator, Publish, format!("{API}.STREAM.PURGE.{}", kv_stream(subjects::SESSIONS_BUCKET)), "log out everywhere"));

    for role in [Role::Operator, Role::Admin] {
        rules.push(rule(role, Publish, subjects::CHAIN_COMMANDS, "send a shop of the chain a restock or alert levels, from the hub"));
        rules.push(rule(role, Publish, subjects::CHAIN_MACHINE_COMMANDS, "send a shop of the chain a machine command, from the hub"));
    }
    // In a shop of a chain: the chain's machine commands, one at a time, applied by the shop's
    // operator process.
    shop_commands(operator, subjects::SHOP_MACHINE_COMMANDS_CONSUMER, "apply the chain's machine commands in the shop", &mut rules);
    // On a hub, the chain's dashboard follows each shop's view in batches of direct gets.
    let why = "follow the chain's view of a shop, on the hub, a batch at a time";
    rules.push(rule(operator, Publish, format!("{API}.DIRECT.GET.{}", subjects::CHAIN_STREAM), why));
    let admin = Role::Admin;
    // On a hub, the chain's view of a shop (`brewq status` finds any shop's order there).
    rules.push(rule(admin, Publish, format!("{API}.STREAM.MSG.GET.{}", subjects::CHAIN_STREAM), "read the chain's view of a shop"));
    rules.push(rule(admin, Publish, format!("{API}.DIRECT.GET.{}.>", subjects::CHAIN_STREAM), "read the chain's view of a shop"));
    rules.push(rule(
        admin,
        Publish,
        format!("$KV.{}.machine.*", subjects::MACHINE_HOLDS_BUCKET),
        "keep a hold for a machine that is not running",
    ));
    rules.push(rule(admin, Publish, subjects::AUDIT_SUBJECTS, "record its actions"));
    rules.push(rule(admin, Publish, format!("{API}.STREAM.MSG.GET.{}", subjects::AUDIT_STREAM), "read the audit trail"));
    rules.push(rule(admin, Publish, format!("{API}.INFO"), "check that JetStream is up"));
    rules.push(rule(admin, Publish, format!("{API}.STREAM.INFO.*"), "inspect streams"));
    rules.push(rule(admin, Publish, format!("{API}.CONSUMER.INFO.*.*"), "inspect consumers"));
    for bucket in [
        subjects::ORDERS_BUCKET,
        subjects::MACHINES_BUCKET,
        subjects::VALUES_BUCKET,
        subjects::IDEMPOTENCY_BUCKET,
        subjects::DEAD_LETTERS_BUCKET,
        subjects::STOCK_BUCKET,
        subjects::MACHINE_HOLDS_BUCKET,
        subjects::SESSIONS_BUCKET,
    ] {
        kv_read(admin, bucket, &mut rules);
        kv_watch(admin, bucket, &mut rules);
    }
    rules
}

/// The permissions of `role`, from [`rules`].
pub fn permissions(role: Role) -> Permissions {
    let mut permissions = Permissions::default();
    for rule in rules().into_iter().filter(|rule| rule.role == role) {
        match rule.direction {
            Direction::Publish => permissions.publish.push(rule.subject),
            Direction::Subscribe => permissions.subscribe.push(rule.subject),
        }
    }
    permissions
}

/// The scope of `role`'s signing key: the role's permissions, for every user it signs.
pub fn scope(role: Role, signing_key: &str) -> crate::jwt::Scope {
    let Permissions { publish, subscribe } = permissions(role);
    crate::jwt::Scope { key: signing_key.to_owned(), role: role.as_str().to_owned(), publish, subscribe }
}

/// The permission matrix as a Markdown table, for SECURITY.md.
pub fn matrix_markdown() -> String {
    let mut table = String::from("| role | pub/sub | subject | why |\n| --- | --- | --- | --- |\n");
    for rule in rules() {
        let direction = match rule.direction {
            Direction::Publish => "pub",
            Direction::Subscribe => "sub",
        };
        table.push_str(&format!("| {} | {direction} | `{}` | {} |\n", rule.role.as_str(), rule.subject, rule.why));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imported(into: Account, subject: &str) -> Option<Account> {
        imports(into).into_iter().find(|import| covers(&import.subject, subject)).map(|import| import.from)
    }

    #[test]
    fn every_import_but_the_jetstream_info_has_a_wildcard() {
        for into in [Account::Streams, Account::Services, Account::Machines] {
            for import in imports(into).into_iter().filter(|import| import.subject != format!("{API}.INFO")) {
                let wildcard = import.subject.split('.').any(|token| token == "*" || token == ">");
                assert!(wildcard, "{into:?} imports {}: an answer pointed at it would be carried on under it", import.subject);
            }
        }
    }

    #[test]
    fn the_services_and_the_machines_reach_the_streams_only_through_what_they_use() {
        for into in [Account::Services, Account::Machines] {
            for import in imports(into) {
                assert!(!import.subject.contains("CONSUMER.CREATE"), "{into:?} imports {}: a consumer's creation", import.subject);
                assert!(!import.subject.starts_with("_"), "{into:?} imports {}: an inbox", import.subject);
                assert!(!import.subject.ends_with("$JS.API.>"), "{into:?} imports the whole JetStream API");
            }
        }
        assert_eq!(imported(Account::Services, &format!("$KV.{}.>", subjects::STOCK_BUCKET)), Some(Account::Streams));
        assert_eq!(imported(Account::Services, subjects::ORDERS_SUBJECTS), Some(Account::Streams));
        assert_eq!(imported(Account::Services, subjects::MACHINE_CONTROL_SUBJECTS), Some(Account::Machines));
        assert_eq!(imported(Account::Machines, subjects::ORDER_UPDATES), Some(Account::Services));
        assert_eq!(imported(Account::Streams, subjects::ORDER_REQUESTS), Some(Account::Services));
        assert_eq!(imported(Account::Streams, subjects::MACHINE_CONTROL_SUBJECTS), Some(Account::Machines));
        // What the services serve one another, and the changes the web shop hears, stay inside.
        assert_eq!(imported(Account::Services, "coffee.stock.reserve"), None);
        assert_eq!(imported(Account::Services, "coffee.web.changed.abc"), None);
        // A batch of direct gets is answered by several messages; a get of one key by one.
        let batch = format!("$JS.API.DIRECT.GET.KV_{}", subjects::ORDERS_BUCKET);
        assert!(imports(Account::Services).iter().any(|import| covers(&import.subject, &batch) && import.streamed));
        let audit = exports(Account::Streams).into_iter().filter(|export| export.subject.starts_with("coffee.audit.")).collect::<Vec<_>>();
        assert_eq!(audit.len(), 1, "the operator's `coffee.audit.>` covers the controller's audit subjects: {audit:?}");
    }

    #[test]
    fn every_import_is_exported() {
        for into in [Account::Streams, Account::Services, Account::Machines] {
            for import in imports(into) {
                let exported = exports(import.from)
                    .into_iter()
                    .any(|export| export.streamed == import.streamed && covers(&export.subject, &import.subject));
                assert!(exported, "{into:?} imports {} from {:?}, which does not export it", import.subject, import.from);
            }
        }
    }
}
