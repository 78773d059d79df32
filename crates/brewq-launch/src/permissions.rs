//! Least privilege: what each role may publish and subscribe to, down to the JetStream API
//! subjects. The server configs and SECURITY.md are both generated from [`rules`], so the two
//! cannot drift.

use brewq_protocol::subjects;

use crate::keys::Role;

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
    /// May answer the requests it receives (one reply each), without publish rights on the
    /// requesters' inboxes.
    pub allow_responses: bool,
}

const API: &str = "$JS.API";

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

/// List or watch a bucket's keys (an ordered consumer on its stream).
fn kv_watch(role: Role, bucket: &str, rules: &mut Vec<Rule>) {
    use Direction::Publish;
    let stream = kv_stream(bucket);
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.CREATE.{stream}"), "watch or list keys"));
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.CREATE.{stream}.>"), "watch or list keys (named)"));
    rules.push(rule(role, Publish, format!("{API}.CONSUMER.DELETE.{stream}.>"), "stop watching"));
    rules.push(rule(role, Publish, format!("$JS.FC.{stream}.>"), "flow control of a watch"));
}

/// Write keys of a bucket (`key` may be a wildcard).
fn kv_write(role: Role, bucket: &str, key: &str, rules: &mut Vec<Rule>) {
    rules.push(rule(role, Direction::Publish, format!("$KV.{bucket}.{key}"), "write keys"));
}

/// The subject of one stock operation.
fn stock(op: &str) -> String {
    subjects::STOCK_SUBJECTS.replace('*', op)
}

fn rule(role: Role, direction: Direction, subject: impl Into<String>, why: &'static str) -> Rule {
    Rule { role, direction, subject: subject.into(), why }
}

/// Every allowed subject of every role.
pub fn rules() -> Vec<Rule> {
    use Direction::{Publish, Subscribe};
    let mut rules = Vec::new();
    for &role in Role::ALL {
        rules.push(rule(role, Subscribe, format!("_INBOX_{}.>", role.as_str()), "its own replies, and no one else's"));
    }
    let consumer = format!("{}.{}", subjects::ORDERS_STREAM, subjects::MAKERS_CONSUMER);

    let provisioner = Role::Provisioner;
    rules.push(rule(provisioner, Publish, format!("{API}.>"), "create and update streams, consumers and buckets"));
    kv_write(provisioner, subjects::STOCK_BUCKET, subjects::STOCK_KEY, &mut rules);
    rules.push(rule(provisioner, Publish, subjects::BENCH_SUBJECTS, "measure raw JetStream publishes (`brewq bench`)"));
    rules.push(rule(provisioner, Publish, subjects::BENCH_ACKS, "ack raw takes from a work queue (`brewq bench`)"));
    kv_write(provisioner, subjects::BENCH_BUCKET, ">", &mut rules);

    let controller = Role::Controller;
    for subject in [subjects::ORDER_REQUESTS, subjects::ORDER_CANCEL, subjects::ORDER_UPDATES] {
        rules.push(rule(controller, Subscribe, subject, "serve orders, cancels and status changes"));
    }
    rules.push(rule(controller, Publish, subjects::ORDERS_SUBJECTS, "queue accepted orders"));
    rules.push(rule(controller, Publish, stock("reserve"), "reserve stock for an order"));
    rules.push(rule(controller, Publish, stock("release"), "release the stock of a cancelled or failed order"));
    rules.push(rule(controller, Publish, stock("commit"), "consume the stock of an order a machine reports ready"));
    rules.push(rule(controller, Publish, format!("{API}.CONSUMER.INFO.{consumer}"), "count pending orders"));
    rules.push(rule(controller, Publish, format!("{API}.STREAM.MSG.DELETE.{}", subjects::ORDERS_STREAM), "take a cancelled order off the queue"));
    for bucket in [subjects::ORDERS_BUCKET, subjects::IDEMPOTENCY_BUCKET] {
        kv_read(controller, bucket, &mut rules);
        kv_write(controller, bucket, ">", &mut rules);
    }
    kv_read(controller, subjects::VALUES_BUCKET, &mut rules);
    kv_write(controller, subjects::VALUES_BUCKET, subjects::PENDING_KEY, &mut rules);
    for subject in [subjects::DEAD_LETTER_RETRY, subjects::DEAD_LETTER_GIVE_UP] {
        rules.push(rule(controller, Subscribe, subject, "retry or give up failed orders"));
    }
    kv_read(controller, subjects::DEAD_LETTERS_BUCKET, &mut rules);
    kv_write(controller, subjects::DEAD_LETTERS_BUCKET, ">", &mut rules);
    kv_read(controller, subjects::MACHINES_BUCKET, &mut rules);
    kv_watch(controller, subjects::MACHINES_BUCKET, &mut rules);

    let stock_role = Role::Stock;
    rules.push(rule(stock_role, Subscribe, subjects::STOCK_SUBJECTS, "serve stock commands"));
    kv_read(stock_role, subjects::STOCK_BUCKET, &mut rules);
    kv_write(stock_role, subjects::STOCK_BUCKET, ">", &mut rules);

    let maker = Role::Maker;
    rules.push(rule(maker, Publish, format!("{API}.CONSUMER.INFO.{consumer}"), "bind to the work queue"));
    rules.push(rule(maker, Publish, format!("{API}.CONSUMER.MSG.NEXT.{consumer}"), "fetch one order"));
    rules.push(rule(maker, Publish, format!("$JS.ACK.{consumer}.>"), "ack, nak, in-progress, term"));
    rules.push(rule(maker, Publish, format!("$JS.ACK.*.*.{consumer}.>"), "the same, in the v2 ack format"));
    rules.push(rule(maker, Publish, subjects::ORDER_UPDATES, "ask for status changes"));
    rules.push(rule(maker, Publish, stock("commit"), "consume the stock of a brewed order"));
    rules.push(rule(maker, Publish, stock("release"), "release the stock of a failed order"));
    rules.push(rule(maker, Publish, format!("{API}.STREAM.INFO.{}", kv_stream(subjects::MACHINES_BUCKET)), "bind to the heartbeats"));
    kv_write(maker, subjects::MACHINES_BUCKET, "machine.*", &mut rules);
    kv_read(maker, subjects::MACHINE_HOLDS_BUCKET, &mut rules);
    kv_write(maker, subjects::MACHINE_HOLDS_BUCKET, "machine.*", &mut rules);
    rules.push(rule(maker, Subscribe, subjects::MACHINE_CONTROL_SUBJECTS, "take the operator's commands"));

    let web = Role::Web;
    rules.push(rule(web, Publish, subjects::ORDER_REQUESTS, "place orders"));
    rules.push(rule(web, Publish, subjects::ORDER_CANCEL, "cancel orders"));
    rules.push(rule(web, Publish, stock("read"), "show the stock"));
    rules.push(rule(web, Publish, format!("{API}.CONSUMER.INFO.{consumer}"), "show the queue"));
    rules.push(rule(web, Publish, format!("{API}.STREAM.INFO.{}", subjects::ORDERS_STREAM), "show an order's place in the queue"));
    for bucket in [subjects::ORDERS_BUCKET, subjects::MACHINES_BUCKET, subjects::MACHINE_HOLDS_BUCKET] {
        kv_read(web, bucket, &mut rules);
        kv_watch(web, bucket, &mut rules);
    }

    let admin = Role::Admin;
    for subject in [subjects::ORDER_REQUESTS, subjects::ORDER_CANCEL] {
        rules.push(rule(admin, Publish, subject, "order and cancel from the CLI"));
    }
    rules.push(rule(admin, Publish, stock("read"), "show the stock"));
    rules.push(rule(admin, Publish, stock("restock"), "restock"));
    rules.push(rule(admin, Publish, subjects::MACHINE_CONTROL_SUBJECTS, "pause, resume, out of service"));
    rules.push(rule(
        admin,
        Publish,
        format!("$KV.{}.machine.*", subjects::MACHINE_HOLDS_BUCKET),
        "keep a hold for a machine that is not running",
    ));
    rules.push(rule(admin, Publish, stock("threshold"), "set low-stock alerts"));
    for subject in [subjects::DEAD_LETTER_RETRY, subjects::DEAD_LETTER_GIVE_UP] {
        rules.push(rule(admin, Publish, subject, "retry or give up failed orders"));
    }
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
    ] {
        kv_read(admin, bucket, &mut rules);
        kv_watch(admin, bucket, &mut rules);
    }
    rules
}

/// The permissions of `role`, from [`rules`].
pub fn permissions(role: Role) -> Permissions {
    let mut permissions = Permissions {
        allow_responses: matches!(role, Role::Controller | Role::Stock | Role::Maker),
        ..Permissions::default()
    };
    for rule in rules().into_iter().filter(|rule| rule.role == role) {
        match rule.direction {
            Direction::Publish => permissions.publish.push(rule.subject),
            Direction::Subscribe => permissions.subscribe.push(rule.subject),
        }
    }
    permissions
}

/// The permissions block of a user in a nats-server config.
pub fn render(permissions: &Permissions) -> String {
    let list = |subjects: &[String]| subjects.iter().map(|subject| format!("\"{subject}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }}{} }}",
        list(&permissions.publish),
        list(&permissions.subscribe),
        if permissions.allow_responses { ", allow_responses: true" } else { "" },
    )
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
    for role in [Role::Controller, Role::Stock, Role::Maker] {
        table.push_str(&format!("| {} | pub | replies to the requests it receives (`allow_responses`) | answer requesters |\n", role.as_str()));
    }
    table
}
