//! TLS material for a cluster: a CA, and per node a certificate good for serving clients and
//! for routes in both directions (server and client auth), for the node's host, `localhost` and
//! `127.0.0.1`. Made once in a folder and reused; bring your own by putting files of the same
//! names there.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::config::{NodeSpec, TlsFiles};

/// The CA certificate clients trust.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// Makes what is missing in `dir` (CA, then each node's certificate) and returns each node's
/// files.
pub fn ensure(dir: &Path, nodes: &[NodeSpec]) -> anyhow::Result<Vec<TlsFiles>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key_path = dir.join("ca-key.pem");
    if !ca_path(dir).is_file() {
        let key = KeyPair::generate().context("generating the CA key")?;
        let certificate = ca_params()?.self_signed(&key).context("signing the CA")?;
        write(&ca_path(dir), &certificate.pem(), 0o644)?;
        write(&ca_key_path, &key.serialize_pem(), 0o600)?;
    }
    let ca_key_pem = std::fs::read_to_string(&ca_key_path).with_context(|| format!("reading {}", ca_key_path.display()))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).context("parsing the CA key")?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    nodes
        .iter()
        .map(|node| {
            let files = TlsFiles {
                ca: ca_path(dir),
                cert: dir.join(format!("{}-cert.pem", node.name)),
                key: dir.join(format!("{}-key.pem", node.name)),
            };
            if !files.cert.is_file() {
                let key = KeyPair::generate().context("generating a node key")?;
                let mut params = CertificateParams::new(vec![node.host.clone(), "localhost".into(), "127.0.0.1".into()])
                    .context("node certificate names")?;
                params.distinguished_name.push(DnType::CommonName, format!("brewq {}", node.name));
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
                let certificate = params.signed_by(&key, &issuer).context("signing a node certificate")?;
                write(&files.cert, &certificate.pem(), 0o644)?;
                write(&files.key, &key.serialize_pem(), 0o600)?;
            }
            Ok(files)
        })
        .collect()
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    params.distinguished_name.push(DnType::CommonName, "brewq cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

fn write(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| format!("protecting {}", path.display()))
}
