//! Least privilege on a real cluster: for each role, what it must do works and a
//! representative set of what it must not do is refused; strangers are refused; a server
//! without the route password cannot join; with TLS on, a plaintext client is refused.

use std::time::Duration;

use brewq_launch::Role;
use brewq_protocol::{OrderReply, StockCommand, StockReply, subjects};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::harness::{TestSystem, nats_server_bin, until_found};

/// How long a refused action has to produce its permission violation.
const VIOLATION_WAIT: Duration = Duration::from_secs(2);

/// How long an attack's answers and deliveries are watched for, once the same requests made
/// properly were answered.
const LANDING_WAIT: Duration = Duration::from_secs(2);

/// A client of one role that reports the server's permission violations.
pub struct RoleClient {
    pub client: async_nats::Client,
    violations: mpsc::UnboundedReceiver<String>,
}

impl RoleClient {
    /// A client of `role`; for the maker role, machine 1's own credential.
    async fn connect(system: &TestSystem, role: Role) -> RoleClient {
        let config = match role {
            Role::Maker => system.system.machine_config(1),
            _ => system.system.nats_config(role, &format!("test-{}", role.as_str())),
        };
        Self::connect_with(config.expect("config")).await
    }

    /// A client with `config`'s credential.
    pub async fn connect_with(config: brewq_runtime::NatsConfig) -> RoleClient {
        let (sender, violations) = mpsc::unbounded_channel();
        let client = brewq_runtime::connect::options(&config)
            .expect("credentials")
            .event_callback(move |event| {
                let sender = sender.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        let _ = sender.send(error.to_string());
                    }
                }
            })
            .connect(config.urls.as_slice())
            .await
            .expect("role connects");
        RoleClient { client, violations }
    }

    /// Waits for a permission violation naming `subject`; false if none comes.
    async fn refused(&mut self, subject: &str) -> bool {
        let deadline = tokio::time::Instant::now() + VIOLATION_WAIT;
        while let Ok(Some(error)) = tokio::time::timeout_at(deadline, self.violations.recv()).await {
            if error.contains("Permissions Violation") && error.contains(subject) {
                return true;
            }
        }
        false
    }

    pub async fn publish_refused(&mut self, subject: &str) -> bool {
        self.client.publish(subject.to_owned(), "{}".into()).await.expect("publish queued");
        self.client.flush().await.expect("flush");
        self.refused(subject).await
    }

    pub async fn subscribe_refused(&mut self, subject: &str) -> bool {
        let _subscription = self.client.subscribe(subject.to_owned()).await.expect("subscribe queued");
        self.client.flush().await.expect("flush");
        self.refused(subject).await
    }

    /// A request that must be answered.
    async fn request_answered(&self, subject: &str, payload: Vec<u8>) -> bool {
        let answer = self.client.request(subject.to_owned(), payload.into());
        matches!(tokio::time::timeout(Duration::from_secs(5), answer).await, Ok(Ok(_)))
    }
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("json")
}

#[tokio::test]
async fn each_role_can_do_its_job_and_nothing_else() {
    // No machine: the order placed below stays in the queue, for the last check.
    let system = TestSystem::start(0, |_| {}).await;
    let order = br#"{"name":"Sec","size":"small","bean_type":"arabica","milk":"none","sugar_count":0}"#.to_vec();
    let read = json(&StockCommand::Get);
    let read_subject = subjects::stock_subject(&StockCommand::Get);
    let restock = StockCommand::Restock { items: [(brewq_protocol::Ingredient::Sugar, 1)].into(), request_id: None };
    let consumer_info = format!("$JS.API.CONSUMER.INFO.{}.{}", subjects::ORDERS_STREAM, subjects::MAKERS_CONSUMER);
    let delete_stream = format!("$JS.API.STREAM.DELETE.{}", subjects::ORDERS_STREAM);

    // What each role must be able to do.
    let web = RoleClient::connect(&system, Role::Web).await;
    assert!(web.request_answered(subjects::ORDER_REQUESTS, order.clone()).await, "web places orders");
    assert!(web.request_answered(&read_subject, read.clone()).await, "web reads the stock");
    assert!(web.request_answered(subjects::SHOP_READ, Vec::new()).await, "web reads the queue");
    assert!(web.request_answered(subjects::BOARD_READ, Vec::new()).await, "web reads the pickup board");
    let maker = RoleClient::connect(&system, Role::Maker).await;
    assert!(maker.request_answered(&consumer_info, Vec::new()).await, "a maker binds to the work queue");
    let admin = RoleClient::connect(&system, Role::Admin).await;
    let restocked: StockReply = serde_json::from_slice(
        &admin.client.request(subjects::stock_subject(&restock), json(&restock).into()).await.expect("answered").payload,
    )
    .expect("json");
    assert!(matches!(restocked, StockReply::Snapshot { .. }), "the admin restocks: {restocked:?}");

    // What each role must not do: a table of (role, action, subject).
    let table: &[(Role, &str, String)] = &[
        (Role::Web, "pub", "coffee.orders.arabica".into()),
        // Minting an operator session, or ending them all.
        (Role::Web, "pub", format!("$KV.{}.forged", subjects::SESSIONS_BUCKET)),
        (Role::Web, "pub", format!("$JS.API.STREAM.PURGE.KV_{}", subjects::SESSIONS_BUCKET)),
        (Role::Maker, "pub", format!("$KV.{}.forged", subjects::SESSIONS_BUCKET)),
        (Role::Web, "pub", subjects::stock_subject(&restock)),
        (Role::Web, "pub", "coffee.stock.reserve".into()),
        (Role::Web, "pub", subjects::ORDER_UPDATES.into()),
        (Role::Web, "pub", delete_stream.clone()),
        // The public shop has no JetStream rights: it reads one order by its id, through the
        // controllers, and can neither list nor watch orders.
        (Role::Web, "pub", consumer_info.clone()),
        (Role::Web, "pub", format!("$JS.API.STREAM.INFO.KV_{}", subjects::ORDERS_BUCKET)),
        (Role::Web, "pub", format!("$JS.API.STREAM.MSG.GET.KV_{}", subjects::ORDERS_BUCKET)),
        (Role::Web, "pub", format!("$JS.API.CONSUMER.CREATE.KV_{}", subjects::ORDERS_BUCKET)),
        (Role::Web, "pub", format!("$KV.{}.someone", subjects::ORDERS_BUCKET)),
        (Role::Web, "pub", subjects::DEAD_LETTER_RETRY.into()),
        // The shop's last hour is the operator's.
        (Role::Web, "pub", subjects::ACTIVITY_READ.into()),
        (Role::Web, "pub", subjects::machine_control(1)),
        (Role::Operator, "pub", subjects::ORDER_REQUESTS.into()),
        (Role::Operator, "pub", delete_stream.clone()),
        (Role::Operator, "pub", "coffee.stock.reserve".into()),
        (Role::Operator, "pub", format!("$KV.{}.someone", subjects::ORDERS_BUCKET)),
        // Responders answer on their callers' inboxes, and nowhere else.
        (Role::Stock, "pub", "_INBOX_provisioner.x".into()),
        (Role::Controller, "pub", "_INBOX_stock.x".into()),
        (Role::Stock, "pub", "coffee.audit.x".into()),
        (Role::Maker, "pub", "_INBOX_web.x".into()),
        (Role::Web, "sub", "_INBOX.>".into()),
        (Role::Web, "sub", "_INBOX_maker.>".into()),
        (Role::Web, "sub", subjects::ORDER_REQUESTS.into()),
        (Role::Maker, "pub", subjects::ORDER_REQUESTS.into()),
        (Role::Maker, "pub", "coffee.stock.reserve".into()),
        (Role::Maker, "pub", subjects::stock_subject(&restock)),
        (Role::Maker, "pub", "coffee.orders.mixed".into()),
        (Role::Maker, "sub", "_INBOX_web.>".into()),
        (Role::Maker, "sub", "_INBOX_controller.>".into()),
        (Role::Controller, "pub", delete_stream.clone()),
        (Role::Controller, "pub", subjects::stock_subject(&restock)),
        (Role::Controller, "sub", "_INBOX_stock.>".into()),
        (Role::Controller, "sub", subjects::STOCK_SUBJECTS.into()),
        (Role::Stock, "pub", "coffee.orders.robusta".into()),
        (Role::Stock, "pub", delete_stream.clone()),
        (Role::Stock, "sub", subjects::ORDER_REQUESTS.into()),
        (Role::Admin, "pub", delete_stream.clone()),
        (Role::Admin, "pub", "coffee.orders.arabica".into()),
        (Role::Admin, "pub", "$JS.API.CONSUMER.DELETE.coffee-orders.coffeeMakers".into()),
    ];
    let mut failures = Vec::new();
    for (role, action, subject) in table {
        let mut client = RoleClient::connect(&system, *role).await;
        let refused = match *action {
            "pub" => client.publish_refused(subject).await,
            _ => client.subscribe_refused(subject).await,
        };
        if !refused {
            failures.push(format!("{} may {action} {subject}", role.as_str()));
        }
    }
    assert!(failures.is_empty(), "not refused: {failures:#?}");

    // The work queue is still there, and only the provisioner may delete a stream.
    assert_eq!(system.stream_messages().await, 1);
    let provisioner = RoleClient::connect(&system, Role::Provisioner).await;
    let jetstream = async_nats::jetstream::new(provisioner.client.clone());
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "scratch".into(),
            subjects: vec!["scratch.>".into()],
            ..Default::default()
        })
        .await
        .expect("the provisioner creates a stream");
    assert!(jetstream.delete_stream("scratch").await.expect("deleted").success, "the provisioner deletes a stream");
    system.stop().await;
}

#[tokio::test]
async fn strangers_are_refused() {
    let system = TestSystem::start(0, |_| {}).await;
    let urls = system.system.cluster.urls();
    let anonymous = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(3)).connect(urls.as_slice()).await;
    assert!(anonymous.is_err(), "a client with no credential connected");
    let unknown_seed = nkeys::KeyPair::new_user().seed().expect("seed");
    let unknown =
        async_nats::ConnectOptions::with_nkey(unknown_seed).connection_timeout(Duration::from_secs(3)).connect(urls.as_slice()).await;
    assert!(unknown.is_err(), "a client with an unknown nkey connected");
    // A user JWT that names the brewq account and the maker role's tag, signed by a key the
    // account does not list: refused.
    let forger = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let account = system.system.keys.coffee.account.public_key();
    let jwt = brewq_launch::jwt::user(&forger, &account, &user.public_key(), "machine-1", &["machine:1".into()], 1).expect("signed");
    let forged = brewq_launch::jwt::creds(&jwt, &user.seed().expect("seed"));
    let forged = async_nats::ConnectOptions::with_credentials(&forged)
        .expect("creds")
        .connection_timeout(Duration::from_secs(3))
        .connect(urls.as_slice())
        .await;
    assert!(forged.is_err(), "a user signed by a stranger's key connected");
    system.stop().await;
}

#[tokio::test]
async fn a_server_without_the_route_password_cannot_join() {
    let system = TestSystem::start(0, |_| {}).await;
    let target = system.system.cluster.ports[0];
    let rogue_dir = system.dir.join("rogue");
    std::fs::create_dir_all(&rogue_dir).expect("rogue dir");
    let port = |_| brewq_launch::cluster::free_port().expect("port");
    let config = format!(
        "server_name: rogue\nlisten: \"127.0.0.1:{}\"\ncluster {{\n  name: \"brewq\"\n  listen: \"127.0.0.1:{}\"\n  \
         routes: [\"nats-route://route:not-the-password@127.0.0.1:{}\"]\n}}\n",
        port(0),
        port(1),
        target.route
    );
    std::fs::write(rogue_dir.join("rogue.conf"), config).expect("config");
    let log = rogue_dir.join("rogue.log");
    let mut rogue = brewq_launch::process::Process::spawn(
        "rogue",
        &nats_server_bin(),
        &["-c".into(), rogue_dir.join("rogue.conf").display().to_string()],
        &[],
        &log,
    )
    .expect("rogue starts");
    let n1_log = system.dir.join("nats/logs/n1.log");
    crate::harness::eventually("n1 to refuse the rogue route", Duration::from_secs(20), || {
        let refused = std::fs::read_to_string(&n1_log).unwrap_or_default().contains("Router connection closed: Authentication Failure");
        async move { refused }
    })
    .await;
    let routez: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{}/routez", target.monitor)).await.expect("monitoring answers").json().await.expect("json");
    let names: Vec<&str> = routez["routes"].as_array().expect("routes").iter().filter_map(|route| route["remote_name"].as_str()).collect();
    assert!(!names.contains(&"rogue"), "the rogue server joined: {names:?}");
    assert!(names.contains(&"n2") && names.contains(&"n3"), "the real peers are there: {names:?}");
    rogue.kill().await;
    system.stop().await;
}

#[tokio::test]
async fn with_tls_a_plaintext_client_is_refused_and_orders_still_flow() {
    let system = TestSystem::start(1, |config| config.tls = true).await;
    assert!(system.system.cluster.urls().iter().all(|url| url.starts_with("tls://")));
    let reply: OrderReply = system.order(&crate::harness::order_json("Tls", "small", "arabica", "none", 0)).await;
    assert!(reply.is_success(), "{reply:?}");
    system.wait_terminal(&[reply.order_id.expect("id")], Duration::from_secs(30)).await;

    let port = system.system.cluster.ports[0].client;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("tcp");
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let info = lines.next_line().await.expect("read").expect("INFO line");
    assert!(info.contains("\"tls_required\":true"), "{info}");
    writer.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await.expect("write");
    let answer = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.expect("an answer");
    let answer = answer.unwrap_or_default().unwrap_or_default();
    assert!(!answer.contains("PONG"), "a plaintext client was served: {answer}");
    system.stop().await;
}

/// The attack of a compromised public process: a request whose reply subject is a key of a
/// bucket, a subject of the work queue, or another role's inbox. Before services checked reply
/// subjects (and had `allow_responses`), the stock manager answered a web request on
/// `$KV.coffee-stock.levels` and overwrote the stock; now no service answers such a request,
/// and nothing is written.
#[tokio::test]
async fn no_requester_can_steer_where_a_service_answers() {
    let system = TestSystem::start(0, |_| {}).await;
    let stock = system.bucket(subjects::STOCK_BUCKET).await;
    let levels_before = stock.entry(subjects::STOCK_KEY).await.expect("read").expect("levels").revision;
    let web = RoleClient::connect(&system, Role::Web).await;
    let read = json(&StockCommand::Get);
    let read_subject = subjects::stock_subject(&StockCommand::Get);
    let order = br#"{"name":"Eve","size":"small","bean_type":"arabica","milk":"none","sugar_count":0}"#.to_vec();
    let targets = [
        format!("$KV.{}.{}", subjects::STOCK_BUCKET, subjects::STOCK_KEY),
        format!("$KV.{}.victim", subjects::ORDERS_BUCKET),
        "coffee.orders.arabica".to_owned(),
        "coffee.audit.forged".to_owned(),
        "_INBOX_controller.forged".to_owned(),
    ];
    // Listening where an answer to another role's inbox would land.
    let controller = RoleClient::connect(&system, Role::Controller).await;
    let mut landed = controller.client.subscribe("_INBOX_controller.forged").await.expect("subscribe");
    controller.client.flush().await.expect("flush");
    for target in &targets {
        for (subject, payload) in
            [(read_subject.as_str(), read.clone()), (subjects::SHOP_READ, Vec::new()), (subjects::ORDER_REQUESTS, order.clone())]
        {
            web.client.publish_with_reply(subject.to_owned(), target.clone(), payload.into()).await.expect("publish");
        }
    }
    web.client.flush().await.expect("flush");
    // A request of the same kind with a proper inbox is answered: the services were there.
    assert!(web.request_answered(&read_subject, read.clone()).await, "the stock manager answers its callers");
    assert!(web.request_answered(subjects::SHOP_READ, Vec::new()).await, "the controller answers its callers");
    let levels_after = stock.entry(subjects::STOCK_KEY).await.expect("read").expect("levels").revision;
    assert_eq!(levels_before, levels_after, "the stock levels were written by a steered answer");
    let records = system.bucket(subjects::ORDERS_BUCKET).await;
    assert!(records.entry("victim").await.expect("read").is_none(), "an order record was written by a steered answer");
    assert_eq!(system.stream_messages().await, 0, "a steered answer went into the work queue");
    let forged = tokio::time::timeout(Duration::from_millis(500), futures::StreamExt::next(&mut landed)).await;
    assert!(forged.is_err(), "a service answered on another role's inbox");
    system.stop().await;
}

/// What a steered answer or delivery could write over, read before an attack and checked after
/// it: the stock levels' revision, the audit trail's and the work queue's lengths, an order
/// record named `victim`, and the pending count the controllers write (a decimal number).
struct Targets {
    levels: u64,
    audit: u64,
    queued: u64,
}

impl Targets {
    /// The subjects an attack points answers and deliveries at.
    fn subjects() -> [String; 5] {
        [
            format!("$KV.{}.{}", subjects::STOCK_BUCKET, subjects::STOCK_KEY),
            format!("$KV.{}.victim", subjects::ORDERS_BUCKET),
            "coffee.orders.arabica".to_owned(),
            "coffee.audit.forged".to_owned(),
            format!("$KV.{}.{}", subjects::VALUES_BUCKET, subjects::PENDING_KEY),
        ]
    }

    /// Read once the controllers have written the pending count, so that their first write
    /// cannot hide what an attack wrote there.
    async fn read(system: &TestSystem) -> Targets {
        let values = system.bucket(subjects::VALUES_BUCKET).await;
        until_found("the pending count", Duration::from_secs(30), || async {
            values.entry(subjects::PENDING_KEY).await.ok().flatten().map(drop)
        })
        .await;
        let jetstream = async_nats::jetstream::new(system.admin.clone());
        let audit = jetstream.get_stream(subjects::AUDIT_STREAM).await.expect("audit").info().await.expect("info").state.messages;
        let stock = system.bucket(subjects::STOCK_BUCKET).await;
        let levels = stock.entry(subjects::STOCK_KEY).await.expect("read").expect("levels").revision;
        Targets { levels, audit, queued: system.stream_messages().await }
    }

    /// Asserts that nothing `what` did lands in any of them, watching for [`LANDING_WAIT`]: an
    /// answer the servers carry on through another import lands after the requests of the
    /// same kind are answered.
    async fn assert_untouched(&self, system: &TestSystem, what: &str) {
        let deadline = tokio::time::Instant::now() + LANDING_WAIT;
        loop {
            if let Some(landed) = self.landed(system).await {
                panic!("{what} {landed}");
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What changed, if anything did.
    async fn landed(&self, system: &TestSystem) -> Option<String> {
        let after = Targets::read(system).await;
        let records = system.bucket(subjects::ORDERS_BUCKET).await;
        let values = system.bucket(subjects::VALUES_BUCKET).await;
        let pending = values.entry(subjects::PENDING_KEY).await.expect("read").map(|entry| entry.value);
        let pending = pending.map(|value| String::from_utf8_lossy(&value).into_owned()).unwrap_or_else(|| "0".into());
        if self.levels != after.levels {
            Some("was written over the stock levels".into())
        } else if records.entry("victim").await.expect("read").is_some() {
            Some("became an order record".into())
        } else if self.queued != after.queued {
            Some("went into the work queue".into())
        } else if self.audit != after.audit {
            Some("went into the audit trail".into())
        } else if pending.parse::<u64>().is_err() {
            Some(format!("was written over the pending count: {pending}"))
        } else {
            None
        }
    }
}

/// A machine's JetStream calls answer where it says: its pull delivers an order there, a read
/// or a write acknowledged answers there. Pointed at a bucket, a stream or another machine's
/// key, none of it may land: the machines are users of an account of their own, which holds
/// no stream and reaches the shop's only through imports. In one account, the pull below
/// wrote the order over the stock levels (every order after it refused until they were
/// repaired by hand).
#[tokio::test]
async fn a_machine_cannot_point_a_delivery_or_an_answer_at_a_bucket_or_a_stream() {
    // No machine running: the order placed below waits in the queue for the stolen credential.
    let system = TestSystem::start(0, |_| {}).await;
    let web = RoleClient::connect(&system, Role::Web).await;
    let order = br#"{"name":"Mallory","size":"small","bean_type":"arabica","milk":"none","sugar_count":0}"#.to_vec();
    assert!(web.request_answered(subjects::ORDER_REQUESTS, order).await, "an order is placed");
    let before = Targets::read(&system).await;

    let machine = RoleClient::connect(&system, Role::Maker).await;
    let consumer = format!("{}.{}", subjects::ORDERS_STREAM, subjects::MAKERS_CONSUMER);
    let pull = format!("$JS.API.CONSUMER.MSG.NEXT.{consumer}");
    let heartbeat = format!("$KV.{}.machine.1", subjects::MACHINES_BUCKET);
    let calls: [(String, &[u8]); 4] = [
        (pull.clone(), br#"{"batch":1,"no_wait":true}"#),
        (format!("$JS.API.CONSUMER.INFO.{consumer}"), b""),
        (format!("$JS.API.STREAM.INFO.KV_{}", subjects::MACHINES_BUCKET), b""),
        (heartbeat.clone(), br#"{"machine_id":1}"#),
    ];
    let mut targets = Targets::subjects().to_vec();
    targets.push(format!("$KV.{}.machine.2", subjects::MACHINES_BUCKET));
    for target in &targets {
        for (subject, payload) in &calls {
            machine.client.publish_with_reply(subject.clone(), target.clone(), payload.to_vec().into()).await.expect("publish");
        }
    }
    machine.client.flush().await.expect("flush");
    // The same calls on the machine's own inbox are answered after them: they were served.
    for (subject, payload) in &calls {
        assert!(machine.request_answered(subject, payload.to_vec()).await, "{subject} is answered on the machine's inbox");
    }
    let jetstream = async_nats::jetstream::new(system.admin.clone());
    let info = jetstream.get_stream(subjects::ORDERS_STREAM).await.expect("queue").consumer_info(subjects::MAKERS_CONSUMER).await;
    assert!(info.expect("consumer info").delivered.consumer_sequence >= 1, "the pulls delivered the order somewhere");

    before.assert_untouched(&system, "a machine's delivery or answer").await;
    let machines = system.bucket(subjects::MACHINES_BUCKET).await;
    assert!(machines.entry("machine.2").await.expect("read").is_none(), "a machine wrote another machine's heartbeat");
    system.stop().await;
}

/// A service's JetStream calls answer where it says: a bucket's info, a key read, a write
/// acknowledged. Pointed at the stock levels, an order record, the work queue or the audit
/// trail, none may land: the services and their callers are users of an account of their own,
/// with no stream, which reaches the streams only through imports, and the servers map each
/// answer back to it. In the streams' account, the stock manager's first call below stored a
/// bucket's info over the stock levels (every order after it refused until they were repaired
/// by hand).
#[tokio::test]
async fn no_service_can_point_an_answer_of_jetstream_at_a_bucket_or_a_stream() {
    let system = TestSystem::start(0, |_| {}).await;
    let before = Targets::read(&system).await;
    let targets = Targets::subjects();
    let info = |bucket: &str| (format!("$JS.API.STREAM.INFO.KV_{bucket}"), Vec::new());
    let leader_get = |bucket: &str, key: &str| {
        (format!("$JS.API.STREAM.MSG.GET.KV_{bucket}"), format!(r#"{{"last_by_subj":"$KV.{bucket}.{key}"}}"#).into_bytes())
    };
    let pending = (format!("$KV.{}.{}", subjects::VALUES_BUCKET, subjects::PENDING_KEY), b"0".to_vec());
    let calls = [
        (Role::Stock, vec![info(subjects::STOCK_BUCKET), leader_get(subjects::STOCK_BUCKET, subjects::STOCK_KEY)]),
        (Role::Controller, vec![info(subjects::ORDERS_BUCKET), leader_get(subjects::STOCK_BUCKET, subjects::STOCK_KEY), pending]),
        (
            Role::Operator,
            vec![info(subjects::DEAD_LETTERS_BUCKET), (format!("$JS.API.STREAM.INFO.{}", subjects::AUDIT_STREAM), Vec::new())],
        ),
    ];
    // From each server in turn: the servers carry an answer on only where it is made, on the
    // server the requester is connected to.
    let config = |role: Role| system.system.nats_config(role, &format!("test-{}", role.as_str())).expect("config");
    let each_server = calls.iter().flat_map(|(role, calls)| {
        config(*role).urls.into_iter().map(move |url| (*role, calls, brewq_runtime::NatsConfig { urls: vec![url], ..config(*role) }))
    });
    for (role, calls, config) in each_server.collect::<Vec<_>>() {
        let service = RoleClient::connect_with(config).await;
        for target in &targets {
            for (subject, payload) in calls {
                service.client.publish_with_reply(subject.clone(), target.clone(), payload.clone().into()).await.expect("publish");
            }
        }
        service.client.flush().await.expect("flush");
        // The same calls on the service's own inbox are answered after them: they were served.
        for (subject, payload) in calls {
            assert!(service.request_answered(subject, payload.clone()).await, "{subject} is answered on the {} inbox", role.as_str());
        }
    }
    before.assert_untouched(&system, "a service's answer").await;
    system.stop().await;
}

/// The roles that call JetStream on the operator's hosts read whole buckets, and follow the
/// order records (the board) and a shop's view (the chain's dashboard), in batches of direct
/// gets: none may create a consumer, whose delivery subject is its creator's to choose and
/// would be stored where it points. Before, the controller's right to follow the records (an
/// ordered consumer) was the right to create a push consumer delivering every record into the
/// stock levels (every order after it refused), and the operator's the same on the dead letters
/// and the holds.
#[tokio::test]
async fn no_service_can_create_a_consumer_that_delivers_into_a_bucket() {
    let system = TestSystem::start(0, |_| {}).await;
    let web = RoleClient::connect(&system, Role::Web).await;
    let order = br#"{"name":"Trudy","size":"small","bean_type":"arabica","milk":"none","sugar_count":0}"#.to_vec();
    assert!(web.request_answered(subjects::ORDER_REQUESTS, order).await, "an order is placed");
    let before = Targets::read(&system).await;
    let target = format!("$KV.{}.{}", subjects::STOCK_BUCKET, subjects::STOCK_KEY);
    // Each role, a bucket it reads, and whether it reads it whole.
    let attempts = [
        (Role::Controller, subjects::ORDERS_BUCKET, true),
        (Role::Controller, subjects::STOCK_BUCKET, true),
        (Role::Controller, subjects::MACHINE_HOLDS_BUCKET, true),
        (Role::Controller, subjects::MACHINES_BUCKET, true),
        (Role::Operator, subjects::DEAD_LETTERS_BUCKET, true),
        (Role::Operator, subjects::MACHINE_HOLDS_BUCKET, true),
        (Role::Stock, subjects::STOCK_BUCKET, false),
    ];
    let mut created = Vec::new();
    for (role, bucket, reads_whole) in attempts {
        let mut attacker = RoleClient::connect(&system, role).await;
        let stream = format!("KV_{bucket}");
        let push = serde_json::json!({
            "stream_name": stream,
            "config": { "deliver_subject": target, "deliver_policy": "all", "ack_policy": "none", "filter_subject": format!("$KV.{bucket}.>") },
        });
        for subject in [format!("$JS.API.CONSUMER.CREATE.{stream}"), format!("$JS.API.CONSUMER.CREATE.{stream}.steal.$KV.{bucket}.>")] {
            let inbox = attacker.client.new_inbox();
            attacker.client.publish_with_reply(subject.clone(), inbox, json(&push).into()).await.expect("publish");
            attacker.client.flush().await.expect("flush");
            if !attacker.refused(&subject).await {
                created.push(format!("{} on {subject}", role.as_str()));
            }
        }
        if !reads_whole {
            continue;
        }
        // What the role reads whole, it still reads, without a consumer.
        let store = async_nats::jetstream::new(attacker.client.clone()).get_key_value(bucket).await.expect("bind");
        let read = brewq_runtime::kv::scan_json(&attacker.client, &store, |_, _: Option<(serde_json::Value, u64)>| {}).await;
        assert!(read.is_ok(), "{} cannot read {bucket} whole: {read:?}", role.as_str());
    }
    assert!(created.is_empty(), "consumers were created by: {created:?}");
    let jetstream = async_nats::jetstream::new(system.admin.clone());
    for (_, bucket, _) in attempts {
        let mut stream = jetstream.get_stream(format!("KV_{bucket}")).await.expect("bucket's stream");
        let consumers = stream.info().await.expect("info").state.consumer_count;
        assert_eq!(consumers, 0, "{bucket} has a consumer");
    }
    let records = system.bucket(subjects::ORDERS_BUCKET).await;
    let written = brewq_runtime::kv::all_json::<serde_json::Value>(&system.admin, &records).await.expect("records read whole");
    assert_eq!(written.len(), 1, "the order's record is read whole, by direct gets");
    before.assert_untouched(&system, "a consumer's delivery").await;
    system.stop().await;
}

/// Order ids are random: from a run of orders, nothing about one tells another. The earlier
/// ids (one counter per controller) shared their first 12 characters and counted up.
#[tokio::test]
async fn order_ids_cannot_be_guessed_from_other_orders() {
    let system = TestSystem::start(0, |config| config.web_listen = Some(crate::harness::free_listen_address())).await;
    let mut ids = Vec::new();
    let mut tickets = Vec::new();
    for n in 0..12 {
        let reply = system.order(&crate::harness::order_json(&format!("Guest{n}"), "small", "arabica", "none", 0)).await;
        assert!(reply.is_success(), "{reply:?}");
        tickets.push(reply.ticket.expect("an accepted order has a ticket"));
        ids.push(reply.order_id.expect("id"));
    }
    for id in &ids {
        assert!(id.len() >= 26 && brewq_protocol::ids::is_order_id(id), "{id}");
    }
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            let shared = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
            assert!(shared < 8, "{a} and {b} share {shared} leading characters");
        }
    }
    // The tickets are the short public numbers, one per order.
    let distinct: std::collections::HashSet<_> = tickets.iter().collect();
    assert_eq!(distinct.len(), tickets.len(), "{tickets:?}");
    assert!(tickets.iter().all(|ticket| (1..=999).contains(ticket)), "{tickets:?}");
    // The public shop answers 404 for an id nobody was given.
    let guess = format!("{}/api/orders/{}", system.http_url(), "a".repeat(26));
    let status = reqwest::get(guess).await.expect("http").status();
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    system.stop().await;
}

/// A hostile client of the public shop and of `coffee.web.requests`: oversized bodies, names
/// that would reorder or hide text on a public screen, a login name of megabytes, an order id
/// made to break a log line or a key. Each is refused with a clear error, and nothing of it
/// reaches the back end.
#[tokio::test]
async fn a_hostile_client_is_refused_clearly_and_leaves_nothing_behind() {
    let system = TestSystem::start(0, crate::harness::with_web_and_office).await;
    let (shop, office) = (system.http_url(), system.office_url());
    // Twice the cap, small enough to be sent whole before the refusal comes back.
    let http = reqwest::Client::new();
    let post_order = |body: String| http.post(format!("{shop}/api/orders")).header("content-type", "application/json").body(body).send();

    let huge = format!(r#"{{"name":"{}","size":"small","bean_type":"arabica","milk":"none","sugar_count":0}}"#, "A".repeat(8000));
    let response = post_order(huge).await.expect("answers");
    assert_eq!(response.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);

    // Bidirectional overrides and invisible characters, over HTTP and over NATS.
    for name in ["Ann\u{202E}sirap", "\u{2066}Bob", "Z\u{200B}oe", "Eve\u{E0041}"] {
        let order = crate::harness::order_json(name, "small", "arabica", "none", 0);
        let response = post_order(order.to_string()).await.expect("answers");
        assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST, "{name:?}");
        let refusal: serde_json::Value = response.json().await.expect("json");
        assert_eq!(refusal["field"], "name", "{name:?}: {refusal}");
        let reply = system.order(&order).await;
        assert_eq!(reply.field.as_deref(), Some("name"), "{name:?} over NATS: {reply:?}");
    }
    // A long login name is refused before any password check, naming the field (a body of
    // megabytes never gets that far: the cap above holds on every route).
    let login = serde_json::json!({"user": "u".repeat(3000), "password": "x"});
    let response = http.post(format!("{office}/admin/login")).json(&login).send().await.expect("answers");
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<serde_json::Value>().await.expect("json")["field"], "user");

    // Ids that cannot be keys: 404, never a panic or a 500.
    for id in ["a%0Ab", "a.b", "a%20b", "*", "%3E"] {
        let status = http.get(format!("{shop}/api/orders/{id}")).send().await.expect("answers").status();
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{id}");
        let status = http.delete(format!("{shop}/api/orders/{id}")).send().await.expect("answers").status();
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "cancel {id}");
    }
    assert_eq!(system.stream_messages().await, 0, "nothing was queued");
    let records = system.bucket(subjects::ORDERS_BUCKET).await;
    let recorded: Vec<String> = futures::TryStreamExt::try_collect(records.keys().await.expect("keys")).await.expect("list");
    assert!(recorded.is_empty(), "nothing was recorded: {recorded:?}");
    let stock = system.stock().await;
    assert!(stock.levels.values().all(|level| level.reserved == 0), "nothing was reserved: {stock:?}");
    system.stop().await;
}
