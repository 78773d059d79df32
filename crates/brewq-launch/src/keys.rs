//! Credentials, kept under `<data-dir>/keys/` and created once: the keys that issue
//! credentials (`trust/`: the NATS operator's, the accounts' and one signing key per role), a
//! creds file per role (`<role>.creds`) and per machine (`machines/<id>.creds`), the system
//! user's (`sys.creds`), the route passwords and the operator's login. Reused on every start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nkeys::KeyPair;
use rand::Rng;
use rand::distr::Alphanumeric;
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
    pub operator: std::sync::Arc<KeyPair>,
    /// The servers' own account (`SYS`): claim updates, monitoring.
    pub system_account: std::sync::Arc<KeyPair>,
    /// The account every brewq role and machine is a user of (`COFFEE`).
    pub account: std::sync::Arc<KeyPair>,
    /// One signing key per role: users it signs get the role's permissions.
    pub signing: BTreeMap<Role, std::sync::Arc<KeyPair>>,
    /// The operator pages' login.
    pub admin_user: String,
    pub admin_password: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("dir", &self.dir).field("account", &self.account.public_key()).finish_non_exhaustive()
    }
}

/// File name, in the keys folder, of what the operator's login needs: the admin password's
/// bcrypt hash.
pub const OPERATOR_HASH_FILE: &str = "admin.bcrypt";

/// Folder, in the keys folder, of the keys that issue credentials: only the host that enrolls
/// and revokes machines needs it.
pub const TRUST_DIR: &str = "trust";

/// Folder, in the keys folder, of the machines' creds files.
pub const MACHINES_DIR: &str = "machines";

impl Keys {
    /// Loads the keys in `dir`, creating any that are missing (mode 0600).
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Keys> {
        let trust = dir.join(TRUST_DIR);
        for folder in [dir.to_owned(), trust.clone(), dir.join(MACHINES_DIR)] {
            std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        }
        let operator = std::sync::Arc::new(key_in(&trust.join("operator.nk"), KeyPair::new_operator)?);
        let system_account = std::sync::Arc::new(key_in(&trust.join("sys-account.nk"), KeyPair::new_account)?);
        let account = std::sync::Arc::new(key_in(&trust.join("coffee-account.nk"), KeyPair::new_account)?);
        let mut signing = BTreeMap::new();
        for &role in Role::ALL {
            let key = key_in(&trust.join(format!("signing-{}.nk", role.as_str())), KeyPair::new_account)?;
            signing.insert(role, std::sync::Arc::new(key));
        }
        let keys = Keys {
            dir: dir.to_owned(),
            operator,
            system_account,
            account,
            signing,
            admin_user: "admin".into(),
            admin_password: secret_in(dir, "admin.password")?,
        };
        for &role in Role::ALL.iter().filter(|&&role| role != Role::Maker) {
            keys.ensure_creds(&keys.creds_file(role), &keys.signing[&role], role.as_str(), &[])?;
        }
        keys.ensure_creds(&keys.sys_creds_file(), &keys.system_account, "sys", &[])?;
        Ok(keys)
    }

    /// Writes a creds file for a new user signed by `signer`, unless the file exists.
    fn ensure_creds(&self, path: &Path, signer: &KeyPair, name: &str, tags: &[String]) -> anyhow::Result<()> {
        if path.is_file() {
            return Ok(());
        }
        let account = if signer.public_key() == self.system_account.public_key() { &self.system_account } else { &self.account };
        let user = KeyPair::new_user();
        let jwt = crate::jwt::user(signer, &account.public_key(), &user.public_key(), name, tags, crate::trust::unix_now())?;
        write_secret(path, &crate::jwt::creds(&jwt, &user.seed().context("encoding a new nkey")?))
    }

    /// The creds file of a machine, issued now: refused when the machine has one already.
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

    /// The creds file of a machine, issued if it has none.
    pub fn ensure_machine(&self, machine: u32) -> anyhow::Result<()> {
        let tags = [format!("{}:{machine}", crate::permissions::MACHINE_TAG)];
        self.ensure_creds(&self.machine_creds_file(machine), &self.signing[&Role::Maker], &format!("machine-{machine}"), &tags)
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

    /// The creds file of `role` (a machine has its own: [`Keys::machine_creds_file`]).
    pub fn creds_file(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.creds", role.as_str()))
    }

    /// The creds file of machine `machine`.
    pub fn machine_creds_file(&self, machine: u32) -> PathBuf {
        self.dir.join(MACHINES_DIR).join(format!("{machine}.creds"))
    }

    /// The creds file of the system account's user.
    pub fn sys_creds_file(&self) -> PathBuf {
        self.dir.join("sys.creds")
    }

    /// The creds of `role`.
    pub fn creds(&self, role: Role) -> anyhow::Result<String> {
        read_creds_file(&self.creds_file(role))
    }
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
