//! torchvision's ConvNeXt: not yet implemented (a stub that recognises nothing).

use candle_core::Result;

use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;

/// Never recognises a checkpoint yet.
pub fn detect(_w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    None
}

pub struct ConvNeXt {
    num_classes: usize,
}

impl ConvNeXt {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        Err(ModelError::UnknownArchitecture {
            path: w.path().to_path_buf(),
            hint: "ConvNeXt is not implemented yet".into(),
        })
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    pub fn build<G: Graph>(&self, _g: &mut G, _x: &G::Value) -> Result<G::Value> {
        candle_core::bail!("ConvNeXt is not implemented yet")
    }
}
