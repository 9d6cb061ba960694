//! ROAR's figure: test accuracy against the fraction of pixels removed (or kept), one line
//! per estimator with ± one standard deviation over the retrains, in a few charts of
//! related estimators; the two controls (random, Sobel) appear in every chart, and every
//! line starts (ROAR) or ends (KAR) at the accuracy on the unmodified data.

use super::estimator::Estimator;
use super::removal::Mode;
use super::table::{summarize, Row, UNMODIFIED};
use crate::attribution::catalog::{EnsembleBase, Family};
use crate::attribution::path::Integration;
use crate::export::chart::{Chart, Series};

const CONTROL_COLOURS: [[u8; 3]; 2] = [[127, 127, 127], [140, 86, 75]];

/// One colour per estimator across all charts (the legend is shared): Tableau 20 without
/// the controls' grey and brown, the strong shades first.
const ESTIMATOR_COLOURS: [[u8; 3]; 18] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [227, 119, 194],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [247, 182, 210],
    [219, 219, 141],
    [158, 218, 229],
    [196, 156, 148],
    [199, 199, 199],
];

/// Which chart an estimator is drawn in.
fn group(estimator: &Estimator) -> (usize, &'static str) {
    match estimator {
        Estimator::Random | Estimator::Sobel => (0, "controls"),
        Estimator::Method { id, base } if id.family().is_ensemble() => match base {
            EnsembleBase::Ig => (4, "Ensembles around IG"),
            _ => (3, "Ensembles around the gradient"),
        },
        Estimator::Method { id, .. } if id.family() == Family::Ig && id.integration() == Some(Integration::Idgi) => {
            (2, "IDGI")
        }
        Estimator::Method { id, .. }
            if matches!(id.family(), Family::Ig | Family::Gradient | Family::InputXGradient) =>
        {
            (1, "Gradient and path methods")
        }
        Estimator::Method { .. } => (5, "Multi-reference IG"),
    }
}

/// The charts of a run's rows (estimator names that do not parse are skipped).
pub fn roar_charts(rows: &[Row], mode: Mode) -> Vec<Chart> {
    let summary = summarize(rows);
    let unmodified = summary
        .iter()
        .find(|(e, _)| e == UNMODIFIED)
        .map(|(_, cells)| cells.clone());
    let series_of = |name: &str, estimator: &Estimator, color: [u8; 3]| -> Option<Series> {
        let cells = &summary.iter().find(|(e, _)| e == name)?.1;
        let mut all: Vec<(u64, super::table::Cell)> = cells.iter().map(|(f, c)| (*f, *c)).collect();
        if let Some(u) = &unmodified {
            all.extend(u.iter().map(|(f, c)| (*f, *c)));
        }
        all.sort_by_key(|(f, _)| *f);
        Some(Series {
            label: estimator.title(),
            points: all.iter().map(|(f, c)| [*f as f64 / 1e4, 100.0 * c.mean]).collect(),
            // Accuracy cannot leave [0, 100] %, whatever the spread.
            spread: all
                .iter()
                .map(|(_, c)| [100.0 * (c.mean - c.std).max(0.0), 100.0 * (c.mean + c.std).min(1.0)])
                .collect(),
            color,
        })
    };
    let estimators: Vec<(String, Estimator)> = summary
        .iter()
        .filter_map(|(name, _)| Some((name.clone(), name.parse::<Estimator>().ok()?)))
        .collect();
    let controls: Vec<Series> = estimators
        .iter()
        .filter(|(_, e)| e.is_control())
        .filter_map(|(name, e)| {
            let colour = CONTROL_COLOURS[usize::from(*e == Estimator::Sobel)];
            series_of(name, e, colour)
        })
        .collect();
    let colour_of = |name: &str| {
        let k = estimators
            .iter()
            .filter(|(_, e)| !e.is_control())
            .position(|(n, _)| n == name)
            .unwrap_or(0);
        ESTIMATOR_COLOURS[k % ESTIMATOR_COLOURS.len()]
    };
    let mut charts = Vec::new();
    for g in 1..=5 {
        let members: Vec<&(String, Estimator)> = estimators.iter().filter(|(_, e)| group(e).0 == g).collect();
        let Some((_, first)) = members.first() else { continue };
        let mut series = controls.clone();
        series.extend(
            members
                .iter()
                .filter_map(|(name, e)| series_of(name, e, colour_of(name))),
        );
        charts.push(Chart {
            title: group(first).1.to_string(),
            x_label: format!("{} (%)", mode.fraction_label()),
            y_label: "test accuracy (%)".into(),
            log_x: false,
            log_y: false,
            series,
            guides: Vec::new(),
        });
    }
    if charts.is_empty() && !controls.is_empty() {
        charts.push(Chart {
            title: "Controls".into(),
            x_label: format!("{} (%)", mode.fraction_label()),
            y_label: "test accuracy (%)".into(),
            log_x: false,
            log_y: false,
            series: controls,
            guides: Vec::new(),
        });
    }
    charts
}
