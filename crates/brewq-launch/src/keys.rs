//! Credentials: one nkey per role, kept as seed files under `<data-dir>/keys/`, and the
//! operator's admin user and password. Created once, reused on every start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::Rng;
use rand::distr::Alphanumeric;

/// Who a client is; each role has its own key (and, with the security work, permissions).
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
#[derive(Debug, Clone)]
pub struct Keys {
    dir: PathBuf,
    /// Public nkey of each role.
    pub public: BTreeMap<Role, String>,
    pub admin_user: String,
    pub admin_password: String,
    /// Password of the `sys` user of the system account (monitoring).
    pub sys_password: String,
}

/// File name, in the keys folder, of what the operator's login needs: the admin password's
/// bcrypt hash.
pub const OPERATOR_HASH_FILE: &str = "admin.bcrypt";

impl Keys {
    /// Loads the keys in `dir`, creating any that are missing (mode 0600).
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Keys> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut public = BTreeMap::new();
        for &role in Role::ALL {
            let path = dir.join(format!("{}.nk", role.as_str()));
            let seed = match std::fs::read_to_string(&path) {
                Ok(seed) => seed.trim().to_owned(),
                Err(_) => {
                    let seed = nkeys::KeyPair::new_user().seed().context("encoding a new nkey")?;
                    write_secret(&path, &seed)?;
                    seed
                }
            };
            let pair = nkeys::KeyPair::from_seed(&seed).with_context(|| format!("{} is not an nkey seed", path.display()))?;
            public.insert(role, pair.public_key());
        }
        Ok(Keys {
            dir: dir.to_owned(),
            public,
            admin_user: "admin".into(),
            admin_password: secret_in(dir, "admin.password")?,
            sys_password: secret_in(dir, "sys.password")?,
        })
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

    /// The seed file of `role`.
    pub fn seed_file(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.nk", role.as_str()))
    }

    /// The seed of `role`.
    pub fn seed(&self, role: Role) -> anyhow::Result<String> {
        read_seed_file(&self.seed_file(role))
    }
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
