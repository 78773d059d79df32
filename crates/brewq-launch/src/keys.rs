//! Credentials, kept under `<data-dir>/keys/` and created once: the keys that issue
//! credentials (`trust/`: the NATS operator's, the accounts' and one signing key per role), a
//! creds file per role (`<role>.creds`) and per machine (`machines/<id>.creds`), the system
//! user's (`sys.creds`), the route passwords and the operator's login. Reused on every start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use nkeys::KeyPair;
use rand::Rng;
use rand::distr::Alphanumeric;

pub use brewq_protocol::subjects::roles::Account;

/// Who a client is; each role has its own signing key, whose scope holds its permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Creates streams, consumers and buckets.
    Provisioner,
    Controller,
    Stock,
    Maker,
    /// The public web shop: a customer's rights.
    Web,
    /// The operator's pages: the operator's actions, not the whole admin.
    Operator,
    /// The operator's CLI.
    Admin,
}

impl Role {
    /// The account its users belong to (SECURITY.md, "Accounts").
    pub fn account(self) -> Account {
        brewq_protocol::subjects::roles::account_of(self.as_str())
    }

    /// Every role.
    pub const ALL: &[Role] = &[Role::Provisioner, Role::Controller, Role::Stock, Role::Maker, Role::Web, Role::Operator, Role::Admin];

    /// The role's name, used for its key file and inbox prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provisioner => "provisioner",
            Role::Controller => "controller",
            Role::Stock => "stock",
            Role::Maker => "maker",
            Role::Web => "web",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The credentials of a system, loaded or created in a folder.
#[derive(Clone)]
pub struct Keys {
    dir: PathBuf,
    /// Issues the accounts.
    pub operator: Arc<KeyPair>,
    /// The servers' own account (`SYS`): claim updates, monitoring.
    pub system_account: Arc<KeyPair>,
    /// The account every brewq role and machine of the (first) shop is a user of (`COFFEE`).
    pub coffee: AccountKeys,
    /// The operator pages' login.
    pub admin_user: String,
    pub admin_password: String,
}

/// The keys of one account: its own, which signs its JWT's users, and one signing key per role,
/// whose users get the role's permissions; with the folders of its creds files and its trust.
/// It holds the streams and buckets, and only the provisioner and the admin log into it; the
/// services and their callers are users of `<name>-SERVICES`, the machines of `<name>-MACHINES`,
/// two accounts that reach the streams only through imports (SECURITY.md, "Accounts").
#[derive(Clone)]
pub struct AccountKeys {
    /// `COFFEE`, or `SHOP-<n>`.
    pub name: String,
    pub account: Arc<KeyPair>,
    /// The account of its services and their callers.
    pub services: Arc<KeyPair>,
    /// The account of its machines.
    pub machines: Arc<KeyPair>,
    pub signing: BTreeMap<Role, Arc<KeyPair>>,
    /// Its creds files: `<role>.creds`, `machines/<id>.creds`.
    pub creds_dir: PathBuf,
    /// Its keys, the JWT last issued and its revocations.
    pub trust_dir: PathBuf,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("dir", &self.dir).field("account", &self.coffee.account.public_key()).finish_non_exhaustive()
    }
}

/// File name, in the keys folder, of what the operator's login needs: the admin password's
/// bcrypt hash.
pub const OPERATOR_HASH_FILE: &str = "admin.bcrypt";

/// Folder, in the keys folder, of each shop's creds files (`shops/<n>/<role>.creds`), and, in
/// the trust folder, of each shop's account keys.
pub const SHOPS_DIR: &str = "shops";
/// Folder, in the keys folder, of the keys that issue credentials: only the host that enrolls
/// and revokes machines needs it.
pub const TRUST_DIR: &str = "trust";

/// Folder, in the keys folder, of the machines' creds files.
pub const MACHINES_DIR: &str = "machines";

impl Keys {
    /// Loads the keys in `dir`, creating any that are missing (mode 0600).
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Keys> {
        let trust = dir.join(TRUST_DIR);
        std::fs::create_dir_all(&trust).with_context(|| format!("creating {}", trust.display()))?;
        let operator = Arc::new(key_in(&trust.join("operator.nk"), KeyPair::new_operator)?);
        let system_account = Arc::new(key_in(&trust.join("sys-account.nk"), KeyPair::new_account)?);
        let coffee = AccountKeys::load_or_create("COFFEE", dir, &trust, &trust.join("coffee-account.nk"), "coffee-")?;
        let keys = Keys {
            dir: dir.to_owned(),
            operator,
            system_account,
            coffee,
            admin_user: "admin".into(),
            admin_password: secret_in(dir, "admin.password")?,
        };
        let sys = keys.sys_creds_file();
        ensure_creds(&sys, &keys.system_account, &keys.system_account.public_key(), "sys", &[])?;
        Ok(keys)
    }

    /// The keys of shop `shop`'s account, `SHOP-<shop>` (created on first use): its creds in
    /// `shops/<shop>/`, its keys in `trust/shops/<shop>/`.
    pub fn shop(&self, shop: u32) -> anyhow::Result<AccountKeys> {
        let trust = self.dir.join(TRUST_DIR).join(SHOPS_DIR).join(shop.to_string());
        let creds = self.dir.join(SHOPS_DIR).join(shop.to_string());
        AccountKeys::load_or_create(&format!("SHOP-{shop}"), &creds, &trust, &trust.join("account.nk"), "")
    }

    /// The password other servers give when they open a route to node `name` (created on
    /// first use).
    pub fn route_password(&self, name: &str) -> anyhow::Result<String> {
        secret_in(&self.dir, &format!("route-{name}.password"))
    }

    /// The folder holding the keys.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the file the operator's login reads (the admin password's bcrypt hash), if
    /// missing.
    pub fn ensure_operator_files(&self) -> anyhow::Result<()> {
        let hash_path = self.dir.join(OPERATOR_HASH_FILE);
        if !hash_path.is_file() {
            let hash = bcrypt::hash(&self.admin_password, 10).context("hashing the admin password")?;
            write_secret(&hash_path, &hash)?;
        }
        Ok(())
    }

    /// The creds file of the system account's user.
    pub fn sys_creds_file(&self) -> PathBuf {
        self.dir.join("sys.creds")
    }

    /// The creds file of `role` in `COFFEE` (a machine has its own: [`Keys::machine_creds_file`]).
    pub fn creds_file(&self, role: Role) -> PathBuf {
        self.coffee.creds_file(role)
    }

    /// The creds of `role` in `COFFEE`.
    pub fn creds(&self, role: Role) -> anyhow::Result<String> {
        read_creds_file(&self.creds_file(role))
    }

    /// The creds file of machine `machine` in `COFFEE`.
    pub fn machine_creds_file(&self, machine: u32) -> PathBuf {
        self.coffee.machine_creds_file(machine)
    }

    /// Issues machine `machine` of `COFFEE` a credential, if it has none.
    pub fn ensure_machine(&self, machine: u32) -> anyhow::Result<()> {
        self.coffee.ensure_machine(machine)
    }

    /// Issues machine `machine` of `COFFEE` a credential: refused when it has one already.
    pub fn enroll_machine(&self, machine: u32) -> anyhow::Result<PathBuf> {
        self.coffee.enroll_machine(machine)
    }
}

impl AccountKeys {
    /// Loads an account's keys (its own in `account_key`; in `trust`, its services' and
    /// machines' accounts', named after `prefix`, and the signing keys), and issues each role but
    /// the machines a creds file in `creds` if it has none in its role's account.
    fn load_or_create(name: &str, creds: &Path, trust: &Path, account_key: &Path, prefix: &str) -> anyhow::Result<AccountKeys> {
        for folder in [creds.to_owned(), creds.join(MACHINES_DIR), trust.to_owned()] {
            std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        }
        let account = Arc::new(key_in(account_key, KeyPair::new_account)?);
        let services = Arc::new(key_in(&trust.join(format!("{prefix}services-account.nk")), KeyPair::new_account)?);
        let machines = Arc::new(key_in(&trust.join(format!("{prefix}machines-account.nk")), KeyPair::new_account)?);
        let mut signing = BTreeMap::new();
        for &role in Role::ALL {
            let key = key_in(&trust.join(format!("signing-{}.nk", role.as_str())), KeyPair::new_account)?;
            signing.insert(role, Arc::new(key));
        }
        let keys = AccountKeys {
            name: name.to_owned(),
            account,
            services,
            machines,
            signing,
            creds_dir: creds.to_owned(),
            trust_dir: trust.to_owned(),
        };
        for &role in Role::ALL.iter().filter(|&&role| role != Role::Maker) {
            keys.ensure_role(role)?;
        }
        Ok(keys)
    }

    /// Issues `role` a creds file in its account, if it has none there (one issued in another
    /// account, as brewq did before the services had an account of their own, is replaced).
    fn ensure_role(&self, role: Role) -> anyhow::Result<()> {
        let path = self.creds_file(role);
        let account = self.public_key(role.account());
        if path.is_file() && issuer_account(&path)? != account {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        ensure_creds(&path, &self.signing[&role], &account, role.as_str(), &[])
    }

    /// The public key of one of its accounts.
    pub fn public_key(&self, account: Account) -> String {
        match account {
            Account::Streams => self.account.public_key(),
            Account::Services => self.services.public_key(),
            Account::Machines => self.machines.public_key(),
        }
    }

    /// The name of one of its accounts: its own, `<name>-SERVICES` or `<name>-MACHINES`.
    pub fn account_name(&self, account: Account) -> String {
        match account {
            Account::Streams => self.name.clone(),
            Account::Services => format!("{}-SERVICES", self.name),
            Account::Machines => self.machines_name(),
        }
    }

    /// The name of its machines' account.
    pub fn machines_name(&self) -> String {
        format!("{}-MACHINES", self.name)
    }

    /// The creds file of `role` (a machine has its own: [`AccountKeys::machine_creds_file`]).
    pub fn creds_file(&self, role: Role) -> PathBuf {
        self.creds_dir.join(format!("{}.creds", role.as_str()))
    }

    /// The creds file of machine `machine`.
    pub fn machine_creds_file(&self, machine: u32) -> PathBuf {
        self.creds_dir.join(MACHINES_DIR).join(format!("{machine}.creds"))
    }

    /// The creds file of a user of the account with every right in it (a leaf node's link to
    /// the hub), issued if missing.
    pub fn account_user_creds_file(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.creds_dir.join(format!("{name}.creds"));
        ensure_creds(&path, &self.account, &self.account.public_key(), name, &[])?;
        Ok(path)
    }

    /// Issues machine `machine` a credential: refused when it has one already.
    pub fn enroll_machine(&self, machine: u32) -> anyhow::Result<PathBuf> {
        let path = self.machine_creds_file(machine);
        anyhow::ensure!(
            !path.exists(),
            "machine {machine} is enrolled already ({}): revoke it first to issue it a new credential",
            path.display()
        );
        self.ensure_machine(machine)?;
        Ok(path)
    }

    /// Issues machine `machine` a credential, if it has none in its machines' account (one
    /// issued in the account itself, as brewq did before machines had an account of their own,
    /// is replaced).
    pub fn ensure_machine(&self, machine: u32) -> anyhow::Result<()> {
        let tags = [format!("{}:{machine}", crate::permissions::MACHINE_TAG)];
        let path = self.machine_creds_file(machine);
        let machines = self.machines.public_key();
        if path.is_file() && issuer_account(&path)? != machines {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        ensure_creds(&path, &self.signing[&Role::Maker], &machines, &format!("machine-{machine}"), &tags)
    }
}

/// The account a creds file's user belongs to.
fn issuer_account(path: &Path) -> anyhow::Result<String> {
    let claims = crate::jwt::claims(crate::jwt::jwt_of_creds(&read_creds_file(path)?)?)?;
    let account = claims["nats"]["issuer_account"].as_str().or(claims["iss"].as_str());
    Ok(account.context("a creds file whose JWT names no account")?.to_owned())
}

/// Writes a creds file for a new user of `account` signed by `signer`, unless the file exists.
fn ensure_creds(path: &Path, signer: &KeyPair, account: &str, name: &str, tags: &[String]) -> anyhow::Result<()> {
    if path.is_file() {
        return Ok(());
    }
    let user = KeyPair::new_user();
    let jwt = crate::jwt::user(signer, account, &user.public_key(), name, tags, crate::trust::unix_now())?;
    write_secret(path, &crate::jwt::creds(&jwt, &user.seed().context("encoding a new nkey")?))
}

/// Reads a creds file.
pub fn read_creds_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the creds file {}", path.display()))
}

/// The nkey whose seed is in `path`, made with `new` and written there first if missing.
fn key_in(path: &Path, new: fn() -> KeyPair) -> anyhow::Result<KeyPair> {
    if !path.exists() {
        write_secret(path, &new().seed().context("encoding a new nkey")?)?;
    }
    let seed = read_seed_file(path)?;
    KeyPair::from_seed(&seed).with_context(|| format!("{} is not an nkey seed", path.display()))
}

/// Reads an nkey seed from a file, trimmed.
pub fn read_seed_file(path: &Path) -> anyhow::Result<String> {
    let seed = std::fs::read_to_string(path).with_context(|| format!("reading nkey seed {}", path.display()))?;
    Ok(seed.trim().to_owned())
}

fn secret_in(dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().to_owned());
    }
    let secret: String = rand::rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect();
    write_secret(&path, &secret)?;
    Ok(secret)
}

fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(secret.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_issued_in_the_shops_account_is_issued_again_in_its_machines_account() {
        let dir = std::env::temp_dir().join(format!("brewq-keys-machines-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = Keys::load_or_create(&dir).expect("keys");
        let account = &keys.coffee;
        let path = account.machine_creds_file(1);
        // As brewq issued it before machines had an account of their own.
        ensure_creds(&path, &account.signing[&Role::Maker], &account.account.public_key(), "machine-1", &[]).expect("old creds");
        assert_eq!(issuer_account(&path).expect("read"), account.account.public_key());
        account.ensure_machine(1).expect("issued again");
        assert_eq!(issuer_account(&path).expect("read"), account.machines.public_key());
        let creds = std::fs::read_to_string(&path).expect("read");
        account.ensure_machine(1).expect("kept");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), creds, "a machine's credential is issued once");
        assert_eq!(account.machines_name(), "COFFEE-MACHINES");
        std::fs::remove_dir_all(&dir).expect("cleaned");
    }

    #[test]
    fn a_service_issued_in_the_shops_account_is_issued_again_in_the_services_account() {
        let dir = std::env::temp_dir().join(format!("brewq-keys-services-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = Keys::load_or_create(&dir).expect("keys");
        let account = &keys.coffee;
        for role in [Role::Controller, Role::Stock, Role::Web, Role::Operator] {
            assert_eq!(issuer_account(&account.creds_file(role)).expect("read"), account.services.public_key(), "{role:?}");
        }
        for role in [Role::Provisioner, Role::Admin] {
            assert_eq!(issuer_account(&account.creds_file(role)).expect("read"), account.account.public_key(), "{role:?}");
        }
        // As brewq issued it before the services had an account of their own.
        let path = account.creds_file(Role::Controller);
        std::fs::remove_file(&path).expect("removed");
        ensure_creds(&path, &account.signing[&Role::Controller], &account.account.public_key(), "controller", &[]).expect("old creds");
        let keys = Keys::load_or_create(&dir).expect("keys again");
        assert_eq!(issuer_account(&path).expect("read"), keys.coffee.services.public_key(), "issued again in the services' account");
        let creds = std::fs::read_to_string(&path).expect("read");
        Keys::load_or_create(&dir).expect("keys once more");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), creds, "a service's credential is issued once");
        assert_eq!(keys.coffee.account_name(Account::Services), "COFFEE-SERVICES");
        std::fs::remove_dir_all(&dir).expect("cleaned");
    }
}
