//! Raw data for analysis elsewhere: attribution maps as one `.safetensors` file (one tensor
//! per map, the settings in its metadata) or `.npy` each, and a path's per-step trace as
//! `.safetensors`.

use std::collections::HashMap;

use half::f16;
use safetensors::tensor::{serialize, TensorView};
use safetensors::Dtype;

use super::ExportError;
use crate::attribution::trace::{TracePoint, TraceRecorder};

fn st_err(e: safetensors::SafeTensorError) -> ExportError {
    ExportError::Encode(format!("safetensors: {e}"))
}

fn check_shape(name: &str, len: usize, shape: &[usize]) -> Result<(), ExportError> {
    if shape.iter().product::<usize>() != len {
        return Err(ExportError::InvalidFigure(format!(
            "{name}: {len} values do not fill shape {shape:?}"
        )));
    }
    Ok(())
}

/// One float32 map of `shape` per (name, shape, values), `metadata` in the header.
pub fn maps_safetensors(
    maps: &[(String, Vec<usize>, &[f32])],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>, ExportError> {
    let bytes: Vec<Vec<u8>> = maps
        .iter()
        .map(|(name, shape, data)| {
            check_shape(name, data.len(), shape)?;
            Ok(bytemuck::cast_slice::<f32, u8>(data).to_vec())
        })
        .collect::<Result<_, ExportError>>()?;
    let views = maps
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), b).map_err(st_err)?,
            ))
        })
        .collect::<Result<Vec<_>, ExportError>>()?;
    serialize(views, Some(metadata.clone())).map_err(st_err)
}

fn f16_bytes(rows: &[&[f16]]) -> Vec<u8> {
    rows.iter()
        .flat_map(|r| r.iter().flat_map(|v| v.to_bits().to_le_bytes()))
        .collect()
}

/// A path's trace: `alpha`, `score`, `step` (index) for every step; `gradient`,
/// `contribution` and (Guided IG) `point` as float16 `[k, …shape]` for the steps whose
/// per-element data was kept, their step numbers in `gradient_steps`, `contribution_steps`,
/// `point_steps`; `sigma` for Blur IG. The trace's stride and `metadata` in the header.
pub fn trace_safetensors(
    trace: &TraceRecorder,
    shape: &[usize],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>, ExportError> {
    let len: usize = shape.iter().product();
    let steps = &trace.steps;
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vec![
        (
            "alpha".into(),
            Dtype::F64,
            vec![steps.len()],
            steps.iter().flat_map(|s| s.alpha.to_le_bytes()).collect(),
        ),
        (
            "score".into(),
            Dtype::F32,
            vec![steps.len()],
            steps.iter().flat_map(|s| s.score.to_le_bytes()).collect(),
        ),
        (
            "step".into(),
            Dtype::I64,
            vec![steps.len()],
            steps.iter().flat_map(|s| (s.index as i64).to_le_bytes()).collect(),
        ),
    ];
    if steps.iter().any(|s| matches!(s.point, TracePoint::Blurred { .. })) {
        let sigma = steps.iter().flat_map(|s| match s.point {
            TracePoint::Blurred { sigma } => sigma.to_le_bytes(),
            _ => f64::NAN.to_le_bytes(),
        });
        tensors.push(("sigma".into(), Dtype::F64, vec![steps.len()], sigma.collect()));
    }
    let mut per_element = |name: &str, rows: Vec<(usize, &[f16])>| -> Result<(), ExportError> {
        let rows: Vec<(usize, &[f16])> = rows.into_iter().filter(|(_, r)| !r.is_empty()).collect();
        if rows.is_empty() {
            return Ok(());
        }
        if let Some((i, r)) = rows.iter().find(|(_, r)| r.len() != len) {
            return Err(ExportError::InvalidFigure(format!(
                "trace step {i}: {} values for shape {shape:?}",
                r.len()
            )));
        }
        let mut full = vec![rows.len()];
        full.extend_from_slice(shape);
        let idx: Vec<u8> = rows.iter().flat_map(|(i, _)| (*i as i64).to_le_bytes()).collect();
        tensors.push((format!("{name}_steps"), Dtype::I64, vec![rows.len()], idx));
        let data: Vec<&[f16]> = rows.iter().map(|(_, r)| *r).collect();
        tensors.push((name.into(), Dtype::F16, full, f16_bytes(&data)));
        Ok(())
    };
    per_element(
        "gradient",
        steps.iter().map(|s| (s.index, s.gradient.as_slice())).collect(),
    )?;
    per_element(
        "contribution",
        steps.iter().map(|s| (s.index, s.contribution.as_slice())).collect(),
    )?;
    per_element(
        "point",
        steps
            .iter()
            .map(|s| match &s.point {
                TracePoint::Values(v) => (s.index, v.as_slice()),
                _ => (s.index, &[][..]),
            })
            .collect(),
    )?;
    let mut meta = metadata.clone();
    meta.insert("stride".into(), trace.stride().to_string());
    meta.insert("shape".into(), format!("{shape:?}"));
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b).map_err(st_err)?)))
        .collect::<Result<Vec<_>, ExportError>>()?;
    serialize(views, Some(meta)).map_err(st_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::path::{PathStep, StepPoint, StepSink};
    use safetensors::SafeTensors;

    #[test]
    fn maps_round_trip_with_metadata() {
        let a: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let b = vec![-1.0f32; 4];
        let meta = HashMap::from([("command".to_string(), "pathscope figure".to_string())]);
        let bytes = maps_safetensors(
            &[
                ("cat/ig".into(), vec![3, 2, 2], &a),
                ("cat/gradient".into(), vec![2, 2], &b),
            ],
            &meta,
        )
        .unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor("cat/ig").unwrap();
        assert_eq!(t.shape(), [3, 2, 2]);
        let got: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|p| f32::from_le_bytes([p[0], p[1], p[2], p[3]]))
            .collect();
        assert_eq!(got, a);
        let (_, m) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(m.metadata().as_ref().unwrap()["command"], "pathscope figure");
        assert!(maps_safetensors(&[("x".into(), vec![5], &a)], &meta).is_err());
    }

    #[test]
    fn trace_keeps_every_step_and_the_kept_data() {
        let len = 6;
        let mut rec = TraceRecorder::new(len, 4, false, usize::MAX);
        for i in 0..4 {
            let g = vec![i as f32; len];
            let c = vec![0.5 * i as f32; len];
            rec.step(&PathStep {
                index: i,
                alpha: i as f64 / 3.0,
                point: StepPoint::Straight { alpha: i as f64 / 3.0 },
                score: 10.0 + i as f32,
                gradient: Some(&g),
                contribution: &c,
            })
            .unwrap();
        }
        let bytes = trace_safetensors(&rec, &[1, 2, 3], &HashMap::new()).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("score").unwrap().shape(), [4]);
        let c = st.tensor("contribution").unwrap();
        assert_eq!(c.shape(), [4, 1, 2, 3]);
        let vals: Vec<f32> = c
            .data()
            .chunks_exact(2)
            .map(|p| f16::from_le_bytes([p[0], p[1]]).to_f32())
            .collect();
        assert_eq!(vals[3 * len], 1.5);
        let alpha = st.tensor("alpha").unwrap();
        let last = &alpha.data()[24..32];
        assert_eq!(f64::from_le_bytes(last.try_into().unwrap()), 1.0);
    }
}
