//! Vanilla gradient and Input×Gradient (a single gradient evaluation at the input).

use candle_core::Tensor;

use super::{GradientOracle, Result};

/// (f_c(x), ∇f_c(x)) for one input (no batch dimension).
pub fn gradient(oracle: &dyn GradientOracle, input: &Tensor, target: usize) -> Result<(f32, Tensor)> {
    let (scores, g) = oracle.scores_and_gradients(&input.unsqueeze(0)?, target)?;
    Ok((scores[0], g.squeeze(0)?))
}

/// x ⊙ ∇f_c(x), in the model's input space (as Captum's `InputXGradient`).
pub fn input_x_gradient(oracle: &dyn GradientOracle, input: &Tensor, target: usize) -> Result<(f32, Tensor)> {
    let (score, g) = gradient(oracle, input, target)?;
    Ok((score, (g * input)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::integrated_gradients::tests::SeparableOracle;
    use candle_core::Device;

    #[test]
    fn gradient_of_linear_model_is_its_weights() {
        let oracle = SeparableOracle {
            f: |i, x| [2.0, -1.0, 0.5][i] * x,
            df: |i, _| [2.0, -1.0, 0.5][i],
        };
        let x = Tensor::new(&[3f32, 1.0, -2.0], &Device::Cpu).unwrap();
        let (s, g) = gradient(&oracle, &x, 0).unwrap();
        assert_eq!(g.to_vec1::<f32>().unwrap(), vec![2.0, -1.0, 0.5]);
        assert!((s - 4.0).abs() < 1e-6);
        let (_, ixg) = input_x_gradient(&oracle, &x, 0).unwrap();
        assert_eq!(ixg.to_vec1::<f32>().unwrap(), vec![6.0, -1.0, -1.0]);
    }
}
