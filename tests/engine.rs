//! The background engine with the embedded SqueezeNet-1.1: jobs finish, repeat requests
//! come from the cache (keyed by content: other reference images or an edited baseline
//! file are other requests), cancellation is prompt, a panicking job is reported and the
//! engine keeps working, path jobs stream partial maps, predictions run as jobs and every
//! event wakes the UI.

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
    (Engine::new(model), Arc::new(input))
}

fn request(input: &Arc<candle_core::Tensor>, spec: MethodSpec, batch_size: usize) -> JobRequest {
    JobRequest {
        input: input.clone(),
        target: 285,
        objective: Objective::Logit,
        spec,
        options: RunOptions {
            batch_size,
            ..RunOptions::default()
        },
    }
}

/// Expected Gradients with `pool` as its references (2 references × 2 points).
fn expected_gradients(pool: Vec<candle_core::Tensor>) -> MethodSpec {
    use pathscope::attribution::multi_reference::{MultiReferenceConfig, MultiReferenceMethod};
    MethodSpec::MultiReference(MultiReferenceConfig {
        method: MultiReferenceMethod::ExpectedGradients { pool },
        references: 2,
        points_per_reference: 2,
        batch_size: 4,
        ..MultiReferenceConfig::default()
    })
}

fn straight(steps: usize) -> MethodSpec {
    MethodSpec::PathIntegral {
        path: PathKind::Straight,
        integration: Integration::Riemann,
        baseline: Baseline::Black,
        steps,
        rule: IntegrationRule::RiemannRight,
        tolerance: None,
    }
}

fn finished(events: &[Event]) -> Option<(&Arc<pathscope::attribution::method::Explanation>, bool)> {
    events.iter().find_map(|e| match e {
        Event::Finished { result, from_cache, .. } => Some((result, *from_cache)),
        _ => None,
    })
}

/// The message of the job's `Failed` event, if it failed.
fn failure(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::Failed { message, .. } => Some(message.clone()),
        _ => None,
    })
}

/// The message of the job's `Notice` event, if it sent one.
fn notice(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::Notice { message, .. } => Some(message.clone()),
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
        tolerance: None,
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
    let message = failure(&events).expect("a Failed event");
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

fn scored(events: &[Event]) -> Option<&Arc<pathscope::metrics::scoring::InsertionDeletion>> {
    events.iter().find_map(|e| match e {
        Event::Scored { curves, .. } => Some(curves),
        _ => None,
    })
}

/// The engine's metrics job draws the same curves as calling the pure
/// `insertion_deletion` functions directly with a hand-written probability scorer.
#[test]
fn metrics_job_matches_direct_insertion_and_deletion() {
    use pathscope::metrics::insertion_deletion::{deletion, insertion, rise_blur, CurveScore};
    use pathscope::metrics::scoring::CurveParams;

    let (mut engine, input) = engine_and_input();
    let job = engine.submit(request(&input, MethodSpec::Gradient, 1));
    let events = engine.wait(job, Duration::from_secs(60));
    let (result, _) = finished(&events).expect("the gradient");
    let flat = result.attribution.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let hw = 224 * 224;
    let saliency: Vec<f32> = (0..hw).map(|i| (0..3).map(|c| flat[c * hw + i].abs()).sum()).collect();

    let params = CurveParams {
        pixels_per_step: 224 * 8,
        batch: 8,
    };
    let job = engine.submit_metrics(pathscope::engine::MetricsRequest {
        input: input.clone(),
        saliency: Arc::new(saliency.clone()),
        target: 285,
        params,
        road: None,
    });
    let events = engine.wait(job, Duration::from_secs(120));
    let curves = scored(&events).unwrap_or_else(|| panic!("no curves: {events:?}"));
    let per_curve = 224usize.div_ceil(8) + 1;
    assert_eq!(curves.insertion.scores.len(), per_curve);
    let last_progress = events.iter().rev().find_map(|e| match e {
        Event::Progress { done, total, .. } => Some((*done, *total)),
        _ => None,
    });
    assert_eq!(
        last_progress,
        Some((2 * per_curve, 2 * per_curve)),
        "progress reaches 100 %"
    );

    let model = engine.model().clone();
    let image = input.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let probability = |images: &[Vec<f32>]| -> Vec<f64> {
        let data: Vec<f32> = images.concat();
        let x = candle_core::Tensor::from_vec(data, (images.len(), 3, 224, 224), &Device::Cpu).unwrap();
        let p = candle_nn::ops::softmax(&model.forward(&x).unwrap(), 1).unwrap();
        let p = p.to_vec2::<f32>().unwrap();
        p.iter().map(|row| row[285] as f64).collect()
    };
    let blurred = rise_blur(&image, 3, 224, 224);
    let (step, batch, kind) = (params.pixels_per_step, params.batch, CurveScore::Probability);
    let ins = insertion(&image, &blurred, &saliency, 3, step, batch, kind, probability);
    let del = deletion(
        &image,
        &vec![0.0; image.len()],
        &saliency,
        3,
        step,
        batch,
        kind,
        probability,
    );
    eprintln!("insertion AUC {:.4}, deletion AUC {:.4}", ins.auc, del.auc);
    assert!(
        (curves.insertion.auc - ins.auc).abs() < 1e-6,
        "{} vs {}",
        curves.insertion.auc,
        ins.auc
    );
    assert!(
        (curves.deletion.auc - del.auc).abs() < 1e-6,
        "{} vs {}",
        curves.deletion.auc,
        del.auc
    );
    assert!((0.0..=1.0).contains(&ins.auc) && (0.0..=1.0).contains(&del.auc));
    assert!(
        ins.auc > del.auc,
        "the gradient beats chance on the cat: {} vs {}",
        ins.auc,
        del.auc
    );
}

/// A metrics job asked for ROAD too returns its curves after insertion and deletion, with
/// one progress bar over both: at fraction 0 both ROAD orders score the image itself, the
/// deletion curve's first point; with half the pixels removed the probability moves.
#[test]
fn metrics_job_adds_road_curves() {
    use pathscope::engine::MetricsRequest;
    use pathscope::metrics::road::RoadParams;
    use pathscope::metrics::scoring::CurveParams;

    let (mut engine, input) = engine_and_input();
    let hw = 224 * 224;
    let params = CurveParams {
        pixels_per_step: hw / 4,
        batch: 8,
    };
    let road = RoadParams {
        fractions: vec![0.0, 0.5],
        ..RoadParams::default()
    };
    let job = engine.submit_metrics(MetricsRequest {
        input: input.clone(),
        // A centre-out ranking: smooth, so the linear imputation fills whole patches.
        saliency: Arc::new(
            (0..hw)
                .map(|p| {
                    let (y, x) = ((p / 224) as f32 - 112.0, (p % 224) as f32 - 112.0);
                    -(x * x + y * y)
                })
                .collect(),
        ),
        target: 285,
        params,
        road: Some(road.clone()),
    });
    let events = engine.wait(job, Duration::from_secs(180));
    let (curves, road_curves) = events
        .iter()
        .find_map(|e| match e {
            Event::Scored { curves, road, .. } => Some((curves.clone(), road.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no curves: {events:?}"));
    let r = road_curves.expect("ROAD curves were asked for");
    assert_eq!(r.params, road);
    let unperturbed = curves.deletion.scores[0];
    for curve in [&r.morf, &r.lerf] {
        assert_eq!(curve.fractions, vec![0.0, 0.5]);
        assert!(
            (curve.scores[0] - unperturbed).abs() < 1e-6,
            "{curve:?} vs {unperturbed}"
        );
        assert!(
            (curve.scores[1] - unperturbed).abs() > 1e-3,
            "half removed changes nothing: {curve:?}"
        );
        assert!((curve.auc - (curve.scores[0] + curve.scores[1]) / 2.0).abs() < 1e-12);
    }
    let last_progress = events.iter().rev().find_map(|e| match e {
        Event::Progress { done, total, .. } => Some((*done, *total)),
        _ => None,
    });
    assert_eq!(last_progress, Some((2 * 5 + 4, 2 * 5 + 4)), "one bar over both");
}

/// A metrics job stops within a batch when cancelled, and a map of the wrong size is a
/// failure message, not a panic; the engine keeps working after both.
#[test]
fn metrics_jobs_cancel_and_fail_cleanly() {
    use pathscope::engine::MetricsRequest;
    use pathscope::metrics::scoring::CurveParams;

    let (mut engine, input) = engine_and_input();
    let slow = MetricsRequest {
        input: input.clone(),
        saliency: Arc::new((0..224 * 224).map(|i| i as f32).collect()),
        target: 285,
        // One pixel per step: 100 354 images, far more than the test waits for.
        params: CurveParams {
            pixels_per_step: 1,
            batch: 4,
        },
        road: None,
    };
    let job = engine.submit_metrics(slow.clone());
    let start = Instant::now();
    while !engine
        .poll()
        .iter()
        .any(|e| matches!(e, Event::Progress { job: j, .. } if *j == job))
    {
        assert!(start.elapsed() < Duration::from_secs(60), "job never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    engine.cancel(job);
    let events = engine.wait(job, Duration::from_secs(30));
    assert!(
        events.iter().any(|e| matches!(e, Event::Cancelled { .. })),
        "{events:?}"
    );

    let job = engine.submit_metrics(MetricsRequest {
        saliency: Arc::new(vec![0.0; 10]),
        ..slow
    });
    let events = engine.wait(job, Duration::from_secs(10));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Failed { message, .. } if message.contains("saliency map"))),
        "{events:?}"
    );
    let job = engine.submit(request(&input, MethodSpec::Gradient, 1));
    assert!(finished(&engine.wait(job, Duration::from_secs(60))).is_some());
}

/// A sanity job on the embedded model: progress and a stage per depth, the gradient losing
/// similarity as blocks are randomised while the edge control stays at 1; a cancelled one
/// ends with `Cancelled`.
#[test]
fn sanity_job_reports_stages_and_can_be_cancelled() {
    use pathscope::engine::{CheckpointSource, SanityDepths, SanityRequest};

    let (mut engine, input) = engine_and_input();
    let sanity = |depths| SanityRequest {
        checkpoint: CheckpointSource::Embedded,
        input: input.clone(),
        target: 285,
        objective: Objective::Logit,
        spec: MethodSpec::Gradient,
        options: RunOptions::default(),
        depths,
        seed: 0,
    };
    let job = engine.submit_sanity(sanity(SanityDepths::Evenly(3)));
    let events = engine.wait(job, Duration::from_secs(120));
    let progress: Vec<(usize, usize)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { done, total, .. } => Some((*done, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(progress, [(1, 3), (2, 3), (3, 3)]);
    let streamed = events.iter().filter(|e| matches!(e, Event::SanityStage { .. })).count();
    assert_eq!(streamed, 3);
    let (stages, control) = events
        .iter()
        .find_map(|e| match e {
            Event::SanityDone { stages, control, .. } => Some((stages, control)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no stages: {events:?}"));
    assert_eq!(stages.iter().map(|s| s.depth).collect::<Vec<_>>(), [0, 5, 10]);
    assert_eq!(stages[0].label, "original");
    assert!((stages[0].spearman_abs - 1.0).abs() < 1e-12);
    assert!(stages[2].spearman_abs < 0.5, "{:?}", stages[2]);
    for s in control {
        for v in [s.spearman_abs, s.spearman_signed, s.ssim, s.hog] {
            assert!((v - 1.0).abs() < 1e-9, "{s:?}");
        }
    }

    // Every block with 16-step IG takes seconds; cancel it at once.
    let job = engine.submit_sanity(SanityRequest {
        spec: straight(16),
        ..sanity(SanityDepths::Every)
    });
    engine.cancel(job);
    let events = engine.wait(job, Duration::from_secs(60));
    assert!(matches!(events.last(), Some(Event::Cancelled { .. })), "{events:?}");

    // A checkpoint that is not there is an error event, not a panic.
    let job = engine.submit_sanity(SanityRequest {
        checkpoint: CheckpointSource::File("/nonexistent/model.safetensors".into()),
        ..sanity(SanityDepths::Evenly(2))
    });
    let events = engine.wait(job, Duration::from_secs(30));
    assert!(
        matches!(events.last(), Some(Event::Failed { message, .. }) if message.contains("model.safetensors")),
        "{events:?}"
    );
}

/// Issue 8's memory check: a job is planned against the memory there is before it
/// allocates. Too little for one model pass is a clear failure; enough for the map but not
/// for the scrubber's full trace runs with a coarser trace, says so, and gives the same map.
#[test]
fn jobs_are_planned_against_memory_refused_or_degraded_with_a_message() {
    let (_, input) = engine_and_input();
    let model = Arc::new(pathscope::assets::default_classifier(&Device::Cpu).unwrap());
    let per_point = model.gradient_bytes_per_point(224, 224).unwrap();
    let traced = |steps| JobRequest {
        options: RunOptions {
            batch_size: 4,
            record_trace: true,
            ..RunOptions::default()
        },
        ..request(&input, straight(steps), 4)
    };

    // Less than one point's pass: refused before computing anything.
    let mut tiny = Engine::with_memory_limit(model.clone(), Some(per_point));
    let job = tiny.submit(traced(8));
    let events = tiny.wait(job, Duration::from_secs(60));
    let message = failure(&events).expect("refused");
    assert!(
        message.starts_with("not enough memory: this job needs at least"),
        "{message}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Progress { .. })),
        "nothing computed"
    );

    // Room for one point's pass, the buffers and about 30 MB of trace, where 200 steps
    // want 121 MB.
    let full = {
        let (mut engine, _) = engine_and_input();
        let job = engine.submit(traced(200));
        finished(&engine.wait(job, Duration::from_secs(300))).unwrap().0.clone()
    };
    let limit = ((per_point + (40 << 20)) as f64 / 0.9) as u64;
    let mut short = Engine::with_memory_limit(model, Some(limit));
    let job = short.submit(traced(200));
    let events = short.wait(job, Duration::from_secs(300));
    let notice = notice(&events).expect("a notice about the trace");
    assert!(
        notice.contains("the scrubber keeps the gradient of about every"),
        "{notice}"
    );
    let (result, _) = finished(&events).expect("the job still finishes");
    let trace = result.trace.as_ref().unwrap();
    assert!(trace.stride() > 1, "a coarser trace");
    assert!(trace.memory_bytes() <= 32 << 20, "{} bytes", trace.memory_bytes());
    assert_eq!(
        trace.steps.len(),
        full.trace.as_ref().unwrap().steps.len(),
        "every step's score kept"
    );
    let a = result.attribution.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = full.attribution.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a, b, "the map itself is unchanged");
}

/// Cached results (each with a trace of up to 256 MiB) are bounded: beyond a quarter of
/// the memory limit (1 GiB at most) the oldest go first.
#[test]
fn the_result_cache_evicts_the_oldest_beyond_its_budget() {
    let (_, input) = engine_and_input();
    let model = Arc::new(pathscope::assets::default_classifier(&Device::Cpu).unwrap());
    // 200 steps with a trace: 121 MB each. With 300 MiB usable, a job runs without
    // shrinking its trace (half for the pass, 121 MB trace, 10 MB buffers) and the cache
    // holds a quarter of the limit: less than one result, so only the newest stays.
    let limit = (300u64 << 20) as f64 / 0.9;
    let mut engine = Engine::with_memory_limit(model, Some(limit as u64));
    let traced = |target| JobRequest {
        target,
        options: RunOptions {
            batch_size: 4,
            record_trace: true,
            ..RunOptions::default()
        },
        ..request(&input, straight(200), 4)
    };
    let mut run = |target| {
        let job = engine.submit(traced(target));
        let events = engine.wait(job, Duration::from_secs(120));
        assert_eq!(notice(&events), None, "no degradation here");
        finished(&events).expect("finishes").1
    };
    assert!(!run(281));
    assert!(!run(285));
    assert!(run(285), "the newest is cached");
    assert!(!run(281), "the oldest was evicted and is computed again");
}

/// Two Expected-Gradients pools of the same size but other images are two requests: the
/// second is computed, not served the first's map (issue 18: the key used to be `Debug`
/// text, which prints a tensor's shape only).
#[test]
fn reference_pools_of_the_same_size_do_not_share_a_cache_entry() {
    let (mut engine, input) = engine_and_input();
    let dark = vec![(input.as_ref() * 0.5).unwrap(), (input.as_ref() * 0.25).unwrap()];
    let light = vec![(input.as_ref() * -0.5).unwrap(), (input.as_ref() * 0.75).unwrap()];
    let mut maps = Vec::new();
    for pool in [dark.clone(), light, dark] {
        let job = engine.submit(request(&input, expected_gradients(pool), 4));
        let events = engine.wait(job, Duration::from_secs(120));
        let (result, cached) = finished(&events).expect("the job finishes");
        maps.push((
            result.attribution.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            cached,
        ));
    }
    assert!(!maps[0].1 && !maps[1].1, "another pool is computed");
    assert_ne!(maps[0].0, maps[1].0, "other references, another map");
    assert!(maps[2].1, "the first pool again comes from the cache");
    assert_eq!(maps[2].0, maps[0].0);
}

/// A baseline image edited on disk between two runs is noticed: the second run computes
/// with the new picture.
#[test]
fn an_edited_baseline_file_is_not_served_from_the_cache() {
    let (mut engine, input) = engine_and_input();
    let file = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("engine_baseline.png");
    let spec = MethodSpec::PathIntegral {
        path: PathKind::Straight,
        integration: Integration::Riemann,
        baseline: Baseline::Image(file.clone()),
        steps: 4,
        rule: IntegrationRule::RiemannRight,
        tolerance: None,
    };
    let mut run = |shade: u8| {
        image::RgbImage::from_pixel(64, 64, image::Rgb([shade, shade, shade]))
            .save(&file)
            .unwrap();
        let job = engine.submit(request(&input, spec.clone(), 4));
        let events = engine.wait(job, Duration::from_secs(120));
        let (result, cached) = finished(&events).expect("the job finishes");
        (result.score_baseline.unwrap(), cached)
    };
    let (dark, _) = run(20);
    let (light, cached) = run(220);
    assert!(!cached, "the file changed: computed again");
    assert_ne!(dark, light, "f at the new baseline");
    let (_, cached) = run(220);
    assert!(cached, "the same file again comes from the cache");
}

/// A photo is normalised and classified on the worker, not by the caller.
#[test]
fn predictions_run_as_jobs() {
    let (mut engine, input) = engine_and_input();
    let sample = &pathscope::assets::SAMPLE_IMAGES[0];
    let crop = resize_and_crop(&decode_rgb(std::path::Path::new(sample.name), sample.bytes).unwrap());
    let job = engine.submit_predict(pathscope::engine::PredictRequest { crop: Arc::new(crop) });
    let events = engine.wait(job, Duration::from_secs(60));
    let (predicted, probabilities) = events
        .iter()
        .find_map(|e| match e {
            Event::Predicted {
                input, probabilities, ..
            } => Some((input.clone(), probabilities.clone())),
            _ => None,
        })
        .expect("a prediction");
    let same = (predicted.as_ref() - input.as_ref())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(same, 0.0, "the input the caller would have made");
    assert_eq!(probabilities.len(), 1000);
    let total: f32 = probabilities.iter().sum();
    assert!((total - 1.0).abs() < 1e-4, "{total}");
    let top = (0..1000).max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
    assert_eq!(top, Some(285), "Egyptian cat");
}

/// The waker is called for every event the worker sends.
#[test]
fn every_event_wakes_the_ui() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (mut engine, input) = engine_and_input();
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = wakes.clone();
    engine.set_waker(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let job = engine.submit(request(&input, straight(8), 4));
    let events = engine.wait(job, Duration::from_secs(120));
    assert!(finished(&events).is_some());
    // The worker wakes right after each send: give the last wake a moment to land.
    let deadline = Instant::now() + Duration::from_secs(5);
    while wakes.load(Ordering::SeqCst) < events.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(wakes.load(Ordering::SeqCst), events.len(), "one wake per event");
}
