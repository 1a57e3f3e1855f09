//! SQS message bodies (after one control byte that picks the delivery)
//! through the real processor on an in-memory worker:
//! `people_testkit::fuzz::Processor::sqs_message`, which the corpus replay
//! (`shared/testkit/tests/fuzz_corpus.rs`) also runs on every seed. The
//! people are rebuilt once imports have grown them, so runs stay
//! independent enough to reproduce and memory stays bounded.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use people_testkit::fuzz::Processor;

/// Rebuild the people once imports have added this many.
const MAX_PEOPLE: usize = 5_000;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    processor: Mutex<Processor>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let processor = Mutex::new(runtime.block_on(Processor::new()));
        Fixture { runtime, processor }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    f.runtime.block_on(async {
        let mut processor = f.processor.lock().unwrap();
        if processor.people.index.current().await.len() > MAX_PEOPLE {
            *processor = Processor::new().await;
        }
        let _ = processor.sqs_message(data).await;
    });
});
