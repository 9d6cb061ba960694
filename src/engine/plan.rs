//! A comparison run as jobs: one job per panel that computes something, grouped into
//! walks so that panels integrating the same path share its gradients
//! ([`super::Engine::submit_walk`]). The studio's Run and `pathscope bench --studio-run`
//! both go through here, so the benchmark times what the studio submits.

use std::sync::Arc;

use candle_core::Tensor;

use crate::attribution::catalog::{Family, MethodId, MethodParams, Variant};
use crate::attribution::method::{PathKind, RunOptions};
use crate::attribution::recalibration::Recalibration;
use crate::attribution::Objective;

use super::JobRequest;

/// What a run computes: the method of the vanilla panel and how the other panels derive
/// from it.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub method: MethodId,
    pub recalibration: Recalibration,
    /// Whether the IDGI panel is computed.
    pub idgi: bool,
    pub params: MethodParams,
    pub objective: Objective,
    pub batch_size: usize,
    pub seed: u64,
}

/// A panel's job, or why its method refused the settings.
pub type PanelJobs = (Vec<(Variant, JobRequest)>, Vec<(Variant, String)>);

impl RunPlan {
    /// The studio's first run: IG on the straight path from a black baseline, 50
    /// Gauss–Legendre points, IDGI, and IG-Uniform re-calibrated by valid-ip with 10
    /// references (the studio's default settings; a studio test keeps the two equal).
    pub fn studio_default() -> Self {
        let recalibration = Recalibration::ValidIp;
        Self {
            method: MethodId::new(Family::Ig)
                .with_recalibration(recalibration)
                .with_path(PathKind::Straight),
            recalibration,
            idgi: true,
            params: MethodParams {
                steps: Some(50),
                references: 10,
                batch_size: 16,
                seed: 0,
                ..MethodParams::default()
            },
            objective: Objective::Logit,
            batch_size: 16,
            seed: 0,
        }
    }

    /// The method `variant`'s panel computes, if it has one (the absolute panel shows the
    /// vanilla map's magnitude and computes nothing).
    pub fn panel_method(&self, variant: Variant) -> Option<MethodId> {
        panel_method(self.method, self.recalibration, self.idgi, variant)
    }

    /// The job of one panel computing `method` for class `target` of `input`;
    /// `record_trace` for the panel whose walk the scrubber plays back.
    pub fn job(
        &self,
        input: Arc<Tensor>,
        target: usize,
        spec: crate::attribution::method::MethodSpec,
        record_trace: bool,
    ) -> JobRequest {
        JobRequest {
            input,
            target,
            objective: self.objective,
            spec,
            options: RunOptions {
                batch_size: self.batch_size,
                seed: self.seed,
                record_trace,
                ..Default::default()
            },
        }
    }

    /// One job per panel that computes something, the vanilla one recording the trace; and
    /// the panels whose method refused these settings, with why.
    pub fn requests(&self, input: &Arc<Tensor>, target: usize) -> PanelJobs {
        let mut refused = Vec::new();
        let mut requests = Vec::new();
        for v in Variant::ALL {
            let Some(method) = self.panel_method(v) else {
                continue;
            };
            match method.spec(&self.params) {
                Ok(spec) => requests.push((v, self.job(input.clone(), target, spec, v == Variant::Vanilla))),
                Err(e) => refused.push((v, e.to_string())),
            }
        }
        (requests, refused)
    }
}

/// The method `variant`'s panel computes in a run of `method` (none for the absolute panel,
/// which shows the vanilla map's magnitude, nor for IDGI when `idgi` is off).
pub fn panel_method(method: MethodId, recalibration: Recalibration, idgi: bool, variant: Variant) -> Option<MethodId> {
    match variant {
        Variant::Absolute => None,
        Variant::Idgi if !idgi => None,
        v => method.variant(v, recalibration),
    }
}

/// A run's jobs grouped into walks: IDGI integrates the vanilla panel's walk (one set of
/// gradients for both, [`super::Engine::submit_walk`]); the others walk alone.
pub fn walk_groups(requests: Vec<(Variant, JobRequest)>) -> Vec<Vec<(Variant, JobRequest)>> {
    let mut groups: Vec<Vec<(Variant, JobRequest)>> = Vec::new();
    for (variant, request) in requests {
        match groups
            .iter_mut()
            .find(|g| variant == Variant::Idgi && g[0].0 == Variant::Vanilla)
        {
            Some(group) => group.push((variant, request)),
            None => groups.push(vec![(variant, request)]),
        }
    }
    groups
}
