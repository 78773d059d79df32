//! A real headless Chromium (Debian's package) drives every page, in English and in French,
//! through `tests/browser/*.mjs` with playwright-core; each page is audited with axe-core and
//! screenshot at phone and desktop sizes into `target/screenshots/`. `scripts/test.sh`
//! installs all of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use brewq_protocol::OrderStatus;

use crate::harness::{TestSystem, free_listen_address, order_json, with_web_and_office};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Runs `tests/browser/<script>` with `args` (the screenshot folder is appended); returns the
/// screenshot folder.
pub(crate) async fn run_browser(script: &str, args: &[String]) -> PathBuf {
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

/// Asserts that every screenshot of `names` (phone and desktop) was taken.
pub(crate) fn assert_screenshots(shots: &Path, names: &[&str]) {
    for name in names {
        for size in ["phone", "desktop"] {
            let path = shots.join(format!("{name}-{size}.png"));
            assert!(std::fs::metadata(&path).is_ok_and(|meta| meta.len() > 1000), "no screenshot {}", path.display());
            println!("screenshot: {}", path.display());
        }
    }
}

#[tokio::test]
async fn an_operator_sees_buttons_by_state_units_and_charts_and_pauses_a_machine_in_chromium_in_both_languages() {
    let system = TestSystem::start(2, |config| {
        with_web_and_office(config);
        config.brew_scale = 0.02;
    })
    .await;
    // One order brewed, so that the charts have a wait and a machine's share to draw.
    let http = reqwest::Client::new();
    let reply: serde_json::Value = http
        .post(format!("{}/api/orders", system.http_url()))
        .json(&order_json("Chart", "small", "arabica", "none", 1))
        .send()
        .await
        .expect("the shop answers")
        .json()
        .await
        .expect("JSON");
    let order_id = reply["order_id"].as_str().expect("an order id").to_owned();
    system.wait_for(&[order_id], |record| record.status == OrderStatus::Ready, Duration::from_secs(30)).await;
    let keys = &system.system.keys;
    let shots = run_browser("admin.mjs", &[system.office_url(), keys.admin_user.clone(), keys.admin_password.clone()]).await;
    assert_screenshots(&shots, &["4-login-en", "4-dashboard-paused-en", "4-login-fr", "4-dashboard-paused-fr"]);
    system.stop().await;
}

#[tokio::test]
async fn a_customer_orders_in_chromium_follows_the_coffee_to_ready_and_is_told_in_both_languages() {
    let system = TestSystem::start(1, |config| {
        config.web_listen = Some(free_listen_address());
        config.brew_scale = 0.3;
    })
    .await;
    let shots = run_browser("order.mjs", &[system.http_url()]).await;
    let names: Vec<String> = ["1-missing-name", "2-confirmation", "3-order-ready"]
        .iter()
        .flat_map(|name| ["en", "fr"].map(|lang| format!("{name}-{lang}")))
        .collect();
    assert_screenshots(&shots, &names.iter().map(String::as_str).collect::<Vec<_>>());
    system.stop().await;
}

#[tokio::test]
async fn the_pickup_board_follows_an_order_to_ready_and_lets_it_go_in_chromium_in_both_languages() {
    let system = TestSystem::start(1, |config| {
        config.web_listen = Some(free_listen_address());
        config.brew_scale = 0.2;
        config.service_env.push(("BREWQ_BOARD_READY_FOR".into(), "8s".into()));
    })
    .await;
    let shots = run_browser("board.mjs", &[system.http_url()]).await;
    assert_screenshots(&shots, &["5-board-en", "5-board-fr"]);
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
    let path = shots.join("5-chain-shop-2-fr-phone.png");
    assert!(std::fs::metadata(&path).is_ok_and(|meta| meta.len() > 1000), "no screenshot {}", path.display());
    system.stop().await;
}
