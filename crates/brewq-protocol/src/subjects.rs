//! Every NATS subject, stream, consumer and bucket name brewq uses. Subject strings exist
//! nowhere else in the code base.

/// Request/reply: a customer's order (JSON [`crate::OrderRequest`]) to the controllers.
pub const ORDER_REQUESTS: &str = "coffee.web.requests";
/// Request/reply: cancel a queued order; the payload is the order id.
pub const ORDER_CANCEL: &str = "coffee.web.cancel";
/// Request/reply: a machine asks the controllers to change an order's status
/// ([`crate::OrderUpdate`]). Outside `coffee.orders.*` so the stream does not capture it.
pub const ORDER_UPDATES: &str = "coffee.records.update";
/// Queue group shared by all controller instances.
pub const CONTROLLER_QUEUE: &str = "controllers";

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
/// Key of the pending-order count (waiting + being brewed), as a decimal string.
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
