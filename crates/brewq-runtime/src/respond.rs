//! Answering requests: only on the inbox of a role allowed to send them
//! ([`brewq_protocol::subjects::may_answer`]), never where a requester points. The servers
//! enforce the same (each responder may publish on its callers' inboxes only); the check here
//! names the request that tried, and spares the work.

/// The subject to answer `message`, received on the service subject `subject`, on: its reply
/// subject if that is a caller's inbox. A request with no reply subject, or one pointing
/// elsewhere, gets `None` and is not served (the second is logged and counted as
/// `brewq_requests_refused_total{subject}`).
pub fn reply_subject(subject: &str, message: &async_nats::Message) -> Option<async_nats::Subject> {
    let reply = message.reply.clone()?;
    if brewq_protocol::subjects::may_answer(subject, reply.as_str()) {
        return Some(reply);
    }
    // The reply subject is the requester's choice: logged escaped and cut short.
    let shown: String = reply.as_str().chars().take(80).collect();
    tracing::warn!(subject, reply = ?shown, "request refused: its reply subject is no caller's inbox");
    metrics::counter!("brewq_requests_refused_total", "subject" => service_name(subject)).increment(1);
    None
}

/// The subject as a metric label: machine control subjects share one.
fn service_name(subject: &str) -> &'static str {
    brewq_protocol::subjects::SERVICES.iter().map(|(service, _)| *service).find(|service| *service == subject).unwrap_or(
        if subject.starts_with("coffee.machines.") {
            brewq_protocol::subjects::MACHINE_CONTROL_SUBJECTS
        } else if brewq_protocol::subjects::machine_updating(subject).is_some() {
            brewq_protocol::subjects::ORDER_UPDATES
        } else {
            "other"
        },
    )
}

/// A new order id: 130 bits from the OS's random source ([`brewq_protocol::ids`]).
pub fn new_order_id() -> String {
    use rand::TryRngCore;
    let mut random = [0u8; brewq_protocol::ids::ORDER_ID_CHARS];
    rand::rngs::OsRng.try_fill_bytes(&mut random).expect("the OS's random source answers");
    brewq_protocol::ids::order_id_from(&random)
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_ids_are_valid_and_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| super::new_order_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| brewq_protocol::ids::is_order_id(id) && id.len() == 26));
    }
}
