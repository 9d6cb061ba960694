//! torchvision's DenseNet: not yet implemented (a stub that recognises nothing).

use candle_core::Result;

use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;

/// Never recognises a checkpoint yet.
pub fn detect(_w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    None
}

pub struct DenseNet {
    num_classes: usize,
}

impl DenseNet {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        Err(ModelError::UnknownArchitecture {
            path: w.path().to_path_buf(),
            hint: "DenseNet is not implemented yet".into(),
        })
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    pub fn build<G: Graph>(&self, _g: &mut G, _x: &G::Value) -> Result<G::Value> {
        candle_core::bail!("DenseNet is not implemented yet")
    }
}
