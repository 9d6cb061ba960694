//! The convergence study as charts: map error and completeness error against gradient
//! evaluations, log–log, one curve per scheme, a pair of charts per direction.

use crate::attribution::adaptive::MAP_TOLERANCE_FACTOR;
use crate::attribution::convergence::{Direction, Scheme, Study};

use super::chart::{Chart, Guide, Series, PALETTE};

/// Errors below this are drawn at it: IDGI's completeness error (≈ 1e-10, float rounding)
/// would otherwise stretch the axis over ten decades.
pub const FLOOR: f64 = 1e-6;

/// Two charts per direction of `study` (map error, completeness error); `tolerance` draws
/// the adaptive rule's criteria as guides when it took part.
pub fn convergence_charts(study: &Study, tolerance: f64) -> Vec<Chart> {
    let schemes = study.schemes();
    let adaptive = schemes.contains(&Scheme::Adaptive);
    let series = |direction: Direction, value: fn(&crate::attribution::convergence::StudyRow) -> f64| {
        schemes
            .iter()
            .enumerate()
            .map(|(k, &scheme)| Series {
                label: scheme.label().to_string(),
                points: study
                    .rows
                    .iter()
                    .filter(|r| r.direction == direction && r.scheme == scheme)
                    .map(|r| [r.gradient_points as f64, value(r).max(FLOOR)])
                    .collect(),
                color: PALETTE[k % PALETTE.len()],
                spread: Vec::new(),
            })
            .collect::<Vec<_>>()
    };
    let guide = |factor: f64, what: &str| {
        adaptive
            .then(|| Guide {
                y: factor * tolerance,
                label: format!("{what} {}%", factor * tolerance * 100.0),
            })
            .into_iter()
            .collect::<Vec<_>>()
    };
    let mut charts = Vec::new();
    for direction in study.directions() {
        charts.push(Chart {
            title: format!("Map error, {}", direction.label()),
            x_label: "gradient evaluations".into(),
            y_label: format!("rel. L2 to {}-point Gauss–Legendre", study.reference_steps),
            log_x: true,
            log_y: true,
            series: series(direction, |r| r.map_error),
            guides: guide(MAP_TOLERANCE_FACTOR, "adaptive's map criterion"),
        });
        charts.push(Chart {
            title: format!("Completeness error, {}", direction.label()),
            x_label: "gradient evaluations".into(),
            y_label: format!("relative completeness error (below {FLOOR:.0e}: at {FLOOR:.0e})"),
            log_x: true,
            log_y: true,
            series: series(direction, |r| r.completeness_error),
            guides: guide(1.0, "tolerance"),
        });
    }
    charts
}
