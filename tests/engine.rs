//! The background engine with the embedded SqueezeNet-1.1: jobs finish, repeat requests
//! come from the cache, cancellation is prompt, a panicking job is reported and the
//! engine keeps working, and path jobs stream partial maps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use pathscope::attribution::method::{MethodSpec, PathKind, RunOptions};
use pathscope::attribution::path::Integration;
use pathscope::attribution::{Baseline, IntegrationRule, Objective};
use pathscope::engine::{Engine, Event, JobRequest};
use pathscope::model::preprocess::{decode_rgb, resize_and_crop};

fn engine_and_input() -> (Engine, Arc<candle_core::Tensor>) {
    let model = Arc::new(pathscope::assets::default_classifier(&Device::Cpu).unwrap());
    let sample = &pathscope::assets::SAMPLE_IMAGES[0];
    let crop = resize_and_crop(&decode_rgb(std::path::Path::new(sample.name), sample.bytes).unwrap());
    let input = model
        .normalization()
        .image_to_tensor(&crop, &Device::Cpu)
        .unwrap()
        .squeeze(0)
        .unwrap();
    (Engine::new(model, "embedded"), Arc::new(input))
}

fn request(input: &Arc<candle_core::Tensor>, spec: MethodSpec, batch_size: usize) -> JobRequest {
    JobRequest {
        input: input.clone(),
        input_key: "chelsea".into(),
        target: 285,
        objective: Objective::Logit,
        spec,
        options: RunOptions {
            batch_size,
            ..RunOptions::default()
        },
    }
}

fn straight(steps: usize) -> MethodSpec {
    MethodSpec::PathIntegral {
        path: PathKind::Straight,
        integration: Integration::Riemann,
        baseline: Baseline::Black,
        steps,
        rule: IntegrationRule::RiemannRight,
    }
}

fn finished(events: &[Event]) -> Option<(&Arc<pathscope::attribution::method::Explanation>, bool)> {
    events.iter().find_map(|e| match e {
        Event::Finished { result, from_cache, .. } => Some((result, *from_cache)),
        _ => None,
    })
}

#[test]
fn jobs_finish_and_repeats_come_from_the_cache() {
    let (mut engine, input) = engine_and_input();
    let job = engine.submit(request(&input, straight(8), 4));
    let events = engine.wait(job, Duration::from_secs(120));
    let (result, cached) = finished(&events).expect("the job finishes");
    assert!(!cached);
    assert_eq!(result.attribution.dims(), &[3, 224, 224]);
    assert!((result.score_input - 31.5078).abs() < 1e-3);
    let progress: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { done, .. } => Some(*done),
            _ => None,
        })
        .collect();
    assert_eq!(progress.last(), Some(&8), "progress reaches 100 %");

    let again = engine.submit(request(&input, straight(8), 4));
    let events = engine.wait(again, Duration::from_secs(10));
    let (cached_result, cached) = finished(&events).expect("the cached job finishes");
    assert!(cached, "the identical request is served from the cache");
    assert!(Arc::ptr_eq(result, cached_result));
    assert!(
        !events.iter().any(|e| matches!(e, Event::Progress { .. })),
        "nothing recomputed"
    );
}

/// The studio issue's requirement: cancelling a 200-step Guided IG run stops the worker
/// within 0.5 s (Guided IG is sequential: one model pass per step, checked between steps).
#[test]
fn cancel_stops_a_200_step_guided_ig_run_promptly() {
    let (mut engine, input) = engine_and_input();
    let guided = MethodSpec::PathIntegral {
        path: PathKind::Guided,
        integration: Integration::Riemann,
        baseline: Baseline::Black,
        steps: 200,
        rule: IntegrationRule::RiemannRight,
    };
    let job = engine.submit(request(&input, guided, 1));
    // Wait until it is really running.
    let start = Instant::now();
    loop {
        let evs = engine.poll();
        if evs
            .iter()
            .any(|e| matches!(e, Event::Progress { job: j, .. } if *j == job))
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "job never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let asked = Instant::now();
    engine.cancel(job);
    let events = engine.wait(job, Duration::from_secs(30));
    let latency = asked.elapsed();
    assert!(
        events.iter().any(|e| matches!(e, Event::Cancelled { .. })),
        "{events:?}"
    );
    assert!(finished(&events).is_none());
    eprintln!("cancel latency: {latency:?}");
    assert!(latency < Duration::from_millis(500), "cancel took {latency:?}");
}

#[test]
fn a_panicking_job_is_reported_and_the_engine_survives() {
    let (mut engine, input) = engine_and_input();
    let crash = engine.submit_crash_for_test();
    let events = engine.wait(crash, Duration::from_secs(10));
    let message = events
        .iter()
        .find_map(|e| match e {
            Event::Failed { message, .. } => Some(message.clone()),
            _ => None,
        })
        .expect("a Failed event");
    assert!(message.contains("panicked"), "{message}");
    let job = engine.submit(request(&input, MethodSpec::Gradient, 1));
    assert!(
        finished(&engine.wait(job, Duration::from_secs(60))).is_some(),
        "the engine still works"
    );
}

#[test]
fn bad_requests_fail_without_killing_the_engine() {
    let (mut engine, input) = engine_and_input();
    let mut bad = request(&input, MethodSpec::Gradient, 1);
    bad.target = 5000;
    let job = engine.submit(bad);
    let events = engine.wait(job, Duration::from_secs(10));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Failed { message, .. } if message.contains("out of range"))));
    let job = engine.submit(request(&input, straight(0), 1));
    assert!(engine
        .wait(job, Duration::from_secs(10))
        .iter()
        .any(|e| matches!(e, Event::Failed { .. })));
    let job = engine.submit(request(&input, MethodSpec::Gradient, 1));
    assert!(finished(&engine.wait(job, Duration::from_secs(60))).is_some());
}

#[test]
fn path_jobs_stream_partial_maps() {
    let (mut engine, input) = engine_and_input();
    let job = engine.submit(request(&input, straight(48), 1));
    let events = engine.wait(job, Duration::from_secs(120));
    let partials: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Partial { map, step, .. } => Some((*step, map.len())),
            _ => None,
        })
        .collect();
    assert!(!partials.is_empty(), "no partial map for a 48-step job");
    assert!(partials.iter().all(|&(_, n)| n == 3 * 224 * 224));
    assert!(finished(&events).is_some());
}
