//! Nothing acknowledged is lost: a client deploys, updates and deletes in a
//! loop while the engine is killed with SIGKILL at random moments; after
//! each restart every acknowledged change is there and every listed
//! function answers with the version it was deployed from.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::{Engine, Registry, http_agent};

const NAMES: [&str; 3] = ["f0", "f1", "f2"];
const VERSIONS: [&str; 3] = ["v1", "v2", "v3"];
const ITERATIONS: usize = 25;

/// A small deterministic generator (xorshift64*), seeded from the clock;
/// the seed is printed so a failure can be replayed with CRASH_TEST_SEED.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the client knows: the state acknowledged by a 200 for each name, and
/// the change in flight (name and the state it would leave) if any.
#[derive(Default)]
struct Ledger {
    acknowledged: BTreeMap<String, Option<String>>,
    in_flight: Option<(String, Option<String>)>,
}

fn push_version(registry: &Registry, version: &str) -> String {
    let wat = std::fs::read_to_string(crate::support::fixture_path("versioned"))
        .unwrap()
        .replace("SLEEP_NS", "0")
        .replace("VERSION_LEN", &version.len().to_string())
        .replace("VERSION", version);
    registry.push_wat(&wat, "versioned.wasm", &format!("versioned:{version}"))
}

/// Changes functions until the engine stops answering.
fn churn(url: String, images: BTreeMap<String, String>, ledger: Arc<Mutex<Ledger>>, seed: u64) {
    let agent = http_agent();
    let mut random = Random(seed | 1);
    loop {
        let name = NAMES[random.below(NAMES.len() as u64) as usize].to_owned();
        let version = VERSIONS[random.below(VERSIONS.len() as u64) as usize].to_owned();
        let current = ledger.lock().unwrap().acknowledged[&name].clone();
        let (path, body, after) = match (&current, random.below(3)) {
            (None, _) => (
                "deploy",
                json!({"function_name": name, "function_image": images[&version], "wasi_cap": true}),
                Some(version),
            ),
            (Some(_), 0) => ("delete", json!({"function_name": name}), None),
            (Some(_), _) => (
                "update",
                json!({"function_name": name, "function_image": images[&version], "wasi_cap": true}),
                Some(version),
            ),
        };
        ledger.lock().unwrap().in_flight = Some((name.clone(), after.clone()));
        let Ok(response) = agent
            .post(&format!("{url}/function/{path}"))
            .send(body.to_string())
        else {
            return; // The engine is gone; the change may or may not have happened.
        };
        let status = response.status().as_u16();
        let mut ledger = ledger.lock().unwrap();
        assert_eq!(status, 200, "{path} {body} answered {status}");
        ledger.acknowledged.insert(name, after);
        ledger.in_flight = None;
    }
}

#[test]
fn acknowledged_changes_survive_sigkill_at_any_moment() {
    let seed = std::env::var("CRASH_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed: {seed} (replay with CRASH_TEST_SEED={seed})");
    let mut random = Random(seed | 1);
    let registry = Registry::start();
    let images: BTreeMap<String, String> = VERSIONS
        .iter()
        .map(|version| (version.to_string(), push_version(&registry, version)))
        .collect();
    let data_dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger {
        acknowledged: NAMES.iter().map(|name| (name.to_string(), None)).collect(),
        in_flight: None,
    }));

    for iteration in 0..ITERATIONS {
        let mut engine = Engine::start_in(data_dir.path(), &[]);
        check_state(&engine, &ledger, iteration);

        let client = {
            let (url, images, ledger) = (engine.url.clone(), images.clone(), ledger.clone());
            let client_seed = random.next();
            std::thread::spawn(move || churn(url, images, ledger, client_seed))
        };
        std::thread::sleep(Duration::from_millis(20 + random.below(300)));
        engine.signal("KILL");
        client.join().expect("the client saw only 200s");
        let _ = engine.wait_for_exit();
    }
    let engine = Engine::start_in(data_dir.path(), &[]);
    check_state(&engine, &ledger, ITERATIONS);
}

/// After a restart: each name is in its acknowledged state, or (for the one
/// change in flight at the kill) in the state that change would leave; the
/// ledger then adopts what the engine has. Every listed function answers
/// with its version.
fn check_state(engine: &Engine, ledger: &Mutex<Ledger>, iteration: usize) {
    let listed = engine.request("GET", "/function/list", "", true);
    let functions = listed.json()["functions"].as_array().unwrap().clone();
    let actual: BTreeMap<String, Option<String>> = NAMES
        .iter()
        .map(|name| {
            let version = functions
                .iter()
                .find(|function| function["func_name"] == *name)
                .map(|function| {
                    let image = function["func_image_name"].as_str().unwrap();
                    image.rsplit(':').next().unwrap().to_owned()
                });
            (name.to_string(), version)
        })
        .collect();
    let mut ledger = ledger.lock().unwrap();
    for name in NAMES {
        let expected = &ledger.acknowledged[name];
        let in_flight = ledger
            .in_flight
            .as_ref()
            .filter(|(changing, _)| changing == name)
            .map(|(_, after)| after);
        assert!(
            actual[name] == *expected || Some(&actual[name]) == in_flight,
            "iteration {iteration}: {name} is {:?}, acknowledged {:?}, in flight {:?}",
            actual[name],
            expected,
            in_flight
        );
        if let Some(version) = &actual[name] {
            engine.assert_output(name, json!({}), version);
        }
    }
    ledger.acknowledged = actual;
    ledger.in_flight = None;
}
