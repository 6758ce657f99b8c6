//! Replays the seed corpus and every regression input through the targets, on stable Rust.

use sockio_fuzz::{TARGETS, crate_dir, files_under};

#[test]
fn committed_seeds_match_the_seed_builders() {
    for (target, name, data) in sockio_fuzz::seeds::all() {
        let path = crate_dir().join("corpus").join(target).join(&name);
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run `cargo run -p sockio-fuzz --bin write-seeds`)",
                path.display()
            )
        });
        assert_eq!(
            committed,
            data,
            "{} is stale (run `cargo run -p sockio-fuzz --bin write-seeds`)",
            path.display()
        );
    }
}

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut replayed = 0;
    for dir in ["corpus", "artifacts"] {
        for file in files_under(&crate_dir().join(dir).join(target)) {
            let data = std::fs::read(&file).expect("readable corpus file");
            // Report the file before a panic unwinds through the test.
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{} fails {target}", file.display());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn every_target_replays_its_corpus() {
    for (target, run) in TARGETS {
        let replayed = replay(target, run);
        assert!(replayed >= 5, "{target}: only {replayed} corpus inputs");
        println!("{target}: {replayed} inputs replayed");
    }
}
