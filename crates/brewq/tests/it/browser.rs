//! A real headless Chromium (Debian's package) drives the customer's pages, through
//! `tests/browser/order.mjs` with playwright-core; screenshots land in
//! `target/screenshots/`. `scripts/test.sh` installs both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{TestSystem, free_listen_address, with_web_and_office};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Runs `tests/browser/<script>` with `args` (the screenshot folder is appended); returns the
/// screenshot folder.
async fn run_browser(script: &str, args: &[String]) -> PathBuf {
    let root = repo_root();
    let chromium = std::env::var_os("CHROMIUM_BIN").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(chromium.is_file(), "no Chromium at {}: run the tests through scripts/test.sh", chromium.display());
    assert!(
        root.join("tests/browser/node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run the tests through scripts/test.sh"
    );
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .args(args)
        .arg(&shots)
        .env("CHROMIUM_BIN", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run).await.expect("the browser run ends").expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "browser run failed:\n{stdout}\n{stderr}");
    shots
}

#[tokio::test]
async fn an_operator_logs_in_and_pauses_a_machine_in_chromium() {
    let system = TestSystem::start(2, with_web_and_office).await;
    let keys = &system.system.keys;
    let shots = run_browser("admin.mjs", &[system.office_url(), keys.admin_user.clone(), keys.admin_password.clone()]).await;
    let path = shots.join("4-dashboard-paused.png");
    assert!(std::fs::metadata(&path).is_ok_and(|meta| meta.len() > 1000), "no screenshot {}", path.display());
    println!("screenshot: {}", path.display());
    system.stop().await;
}

#[tokio::test]
async fn a_customer_orders_in_chromium_and_follows_the_coffee_to_ready() {
    let system = TestSystem::start(2, |config| {
        config.web_listen = Some(free_listen_address());
        config.brew_scale = 0.1;
    })
    .await;
    let shots = run_browser("order.mjs", &[system.http_url()]).await;
    for shot in ["1-missing-name.png", "2-confirmation.png", "3-order-ready.png"] {
        let path = shots.join(shot);
        assert!(std::fs::metadata(&path).is_ok_and(|meta| meta.len() > 1000), "no screenshot {}", path.display());
        println!("screenshot: {}", path.display());
    }
    system.stop().await;
}

#[tokio::test]
async fn the_chains_operator_filters_a_shop_pauses_its_machine_and_restocks_it_in_chromium() {
    let system = TestSystem::start(1, |config| {
        config.shops = 2;
        with_web_and_office(config);
    })
    .await;
    let keys = &system.system.keys;
    let shots = run_browser("chain.mjs", &[system.office_url(), keys.admin_user.clone(), keys.admin_password.clone()]).await;
    let path = shots.join("5-chain-shop-2.png");
    assert!(std::fs::metadata(&path).is_ok_and(|meta| meta.len() > 1000), "no screenshot {}", path.display());
    system.stop().await;
}
