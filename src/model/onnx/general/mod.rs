//! Any ONNX classifier, interpreted node by node on any [`Graph`]: on the CPU tape (our
//! kernels, an input-gradient-only reverse pass) or as candle operations differentiated by
//! candle's autograd (the reference, and the path off the CPU). This is what vision
//! transformers, ConvNeXt, EfficientNet, MobileNetV3 and the other graphs the
//! convolution-stack translator ([`super::cnn`]) does not cover need: attention,
//! LayerNorm, GELU, squeeze-excite, hard-swish, channel shuffle, average pooling.
//!
//! - Float values flow through the graph; integer values (shapes, indices, masks) stay on
//!   the host, so shape arithmetic (Shape → Gather → Concat → Reshape, as the legacy
//!   exporter writes it) costs nothing and works for any batch size.
//! - Nodes that depend only on constants and on the input's *shape* are evaluated once per
//!   input shape, with candle, and cached as constants (Swin's attention masks, position
//!   indices, folded shape subgraphs).
//! - A BatchNorm or a ReLU/ReLU6 that only reads a convolution is folded into it, as the
//!   built-in networks do.
//! - A graph is run once on zeros when it is loaded, so a graph that cannot run (a Reshape
//!   to a wrong size, an operator used in a way not supported) is refused at load time with
//!   the node named.

mod eval;
mod ints;
mod parse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Tensor};

use super::proto;
use super::tensor::{self, Attributes};
use super::{error_line, GraphInput};
use crate::net::candle_graph::CandleGraph;
use crate::net::graph::{Graph, Unary};
use crate::net::layers::{self, Activation};
use crate::net::tape::Tape;
use eval::{conv_activation, Evaluator, Value};
use ints::Ints;
pub use parse::GENERAL_OPERATORS;
use parse::{parse_op, BinaryOp, Elementwise, Op};

/// A value known without the input: a float constant or host integers.
#[derive(Debug, Clone)]
enum Known {
    Float(layers::Constant),
    Ints(Ints),
}

impl Known {
    fn value<V>(&self) -> Value<V> {
        match self {
            Known::Float(c) => Value::C(c.clone()),
            Known::Ints(i) => Value::I(i.clone()),
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    op: Op,
    /// Slots of the inputs; `None` for an omitted optional input.
    inputs: Vec<Option<usize>>,
    outputs: Vec<usize>,
    /// "Conv `name`", for errors.
    label: String,
}

/// The outputs of the shape-only nodes for one input shape, by slot.
type ShapeOnlyValues = Arc<Vec<(usize, Known)>>;

/// An ONNX graph run by the interpreter.
#[derive(Debug)]
pub struct GeneralNetwork {
    nodes: Vec<Node>,
    constants: Vec<(usize, Known)>,
    slots: usize,
    input: usize,
    output: usize,
    num_classes: usize,
    /// Nodes whose outputs depend only on constants and the input's shape.
    shape_only: Vec<bool>,
    /// For each node, the slots no later node reads (dropped once it has run, so that a
    /// pass that does not record keeps only what is still needed).
    last_reads: Vec<Vec<usize>>,
    /// The graph was exported for one image (its shapes fix the batch size at 1).
    one_image_at_a_time: bool,
    /// Float values the nodes produce for one image of `traced_size`.
    elements_per_image: u64,
    traced_size: (usize, usize),
    /// The shape-only nodes' outputs, by input shape.
    cache: Mutex<HashMap<Vec<usize>, ShapeOnlyValues>>,
    device: Device,
}

fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(candle_core::Error::Msg(message.into()))
}

fn known(c: &tensor::Constant, device: &Device) -> Result<Known> {
    Ok(match c {
        tensor::Constant::Float { dims, data } => Known::Float(layers::Constant::new(Tensor::from_vec(
            data.clone(),
            dims.as_slice(),
            device,
        )?)?),
        tensor::Constant::Int { dims, data } => Known::Ints(Ints {
            dims: dims.clone(),
            data: data.clone(),
        }),
    })
}

impl GeneralNetwork {
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Float elements the nodes produce for one `h`×`w` image (as measured when the graph
    /// was loaded, scaled by area).
    pub fn elements_per_image(&self, h: usize, w: usize) -> u64 {
        let (th, tw) = self.traced_size;
        let scale = (h * w) as f64 / (th * tw).max(1) as f64;
        (self.elements_per_image as f64 * scale.max(1.0)) as u64
    }

    /// Builds the interpreter for `graph` (its initializers already in `constants`) and
    /// checks it by running it once on zeros of the input's declared size.
    pub fn build(
        graph: &proto::GraphProto,
        constants: HashMap<String, tensor::Constant>,
        input: &GraphInput,
        opset: i64,
        device: &Device,
    ) -> std::result::Result<Self, String> {
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let mut consts: Vec<(usize, Known)> = Vec::new();
        let mut const_by_slot: HashMap<usize, tensor::Constant> = HashMap::new();
        let mut next = 0usize;
        let mut new_slot = |name: &str, slot_of: &mut HashMap<String, usize>| {
            let s = next;
            next += 1;
            if !name.is_empty() {
                slot_of.insert(name.to_string(), s);
            }
            s
        };
        for (name, c) in constants {
            let s = new_slot(&name, &mut slot_of);
            consts.push((s, known(&c, device).map_err(|e| error_line(&e))?));
            const_by_slot.insert(s, c);
        }
        let input_slot = new_slot(&input.name, &mut slot_of);
        let produced: std::collections::HashSet<&str> =
            graph.node.iter().flat_map(|n| &n.output).map(String::as_str).collect();
        let mut nodes = Vec::new();
        for node in &graph.node {
            let label = if node.name.is_empty() {
                node.op_type.clone()
            } else {
                format!("{} `{}`", node.op_type, node.name)
            };
            let inputs = node
                .input
                .iter()
                .map(|name| {
                    if name.is_empty() {
                        return Ok(None);
                    }
                    slot_of.get(name).copied().map(Some).ok_or_else(|| {
                        if produced.contains(name.as_str()) {
                            format!(
                                "{label}: its input `{name}` is computed only by this node or a later one (a \
                                 cycle, or an unsorted graph)"
                            )
                        } else {
                            format!(
                                "{label}: its input `{name}` is not the graph's input, an initializer or any \
                                 node's output"
                            )
                        }
                    })
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            let attrs = Attributes { node };
            // The legacy exporter passes some weights through Identity: they stay constants.
            if matches!(node.op_type.as_str(), "Identity" | "Dropout") {
                if let (Some(Some(s)), Some(name)) = (inputs.first(), node.output.first()) {
                    if const_by_slot.contains_key(s) {
                        slot_of.insert(name.clone(), *s);
                        continue;
                    }
                }
            }
            if node.op_type == "Constant" {
                let c = attrs.constant_value().map_err(|m| format!("{label}: {m}"))?;
                let name = node.output.first().ok_or_else(|| format!("{label}: no output"))?;
                let s = new_slot(name, &mut slot_of);
                consts.push((s, known(&c, device).map_err(|e| error_line(&e))?));
                const_by_slot.insert(s, c);
                continue;
            }
            let op =
                parse_op(node, &attrs, &inputs, &const_by_slot, opset, device).map_err(|m| format!("{label}: {m}"))?;
            let outputs = node.output.iter().map(|name| new_slot(name, &mut slot_of)).collect();
            nodes.push(Node {
                op,
                inputs,
                outputs,
                label,
            });
        }
        let [output] = &graph.output[..] else {
            return Err(format!(
                "the graph has {} outputs; a classifier has one, the logits",
                graph.output.len()
            ));
        };
        let output_slot = *slot_of
            .get(&output.name)
            .ok_or_else(|| format!("the graph output `{}` is not computed by any node", output.name))?;
        if output_slot == input_slot || nodes.is_empty() {
            return Err("the graph computes nothing from its input".into());
        }
        fuse_into_convolutions(&mut nodes, output_slot);
        fuse_silu(&mut nodes, output_slot);

        // Shape-only nodes: every input a constant or itself shape-only, or a Shape/Size node.
        let mut known_slot: Vec<bool> = vec![false; next];
        for (s, _) in &consts {
            known_slot[*s] = true;
        }
        let mut shape_only = Vec::with_capacity(nodes.len());
        for node in &nodes {
            // Shape and Size of the input itself need only its shape.
            let of_input =
                matches!(node.op, Op::Shape { .. } | Op::Size) && node.inputs.first() == Some(&Some(input_slot));
            let only = of_input || node.inputs.iter().all(|i| i.is_none_or(|s| known_slot[s]));
            if only {
                for &o in &node.outputs {
                    known_slot[o] = true;
                }
            }
            shape_only.push(only);
        }
        // The last node that reads each slot in a pass with the input.
        let mut last_reader: HashMap<usize, usize> = HashMap::new();
        for (k, node) in nodes.iter().enumerate() {
            if !shape_only[k] {
                for s in node.inputs.iter().flatten() {
                    last_reader.insert(*s, k);
                }
            }
        }
        let mut last_reads = vec![Vec::new(); nodes.len()];
        for (s, k) in last_reader {
            if s != output_slot {
                last_reads[k].push(s);
            }
        }

        let mut network = GeneralNetwork {
            nodes,
            constants: consts,
            slots: next,
            input: input_slot,
            output: output_slot,
            num_classes: 0,
            shape_only,
            last_reads,
            one_image_at_a_time: false,
            elements_per_image: 0,
            traced_size: (224, 224),
            cache: Mutex::new(HashMap::new()),
            device: device.clone(),
        };
        let (h, w) = input.size.unwrap_or((224, 224));
        let trial = |network: &GeneralNetwork, batch: usize| -> Result<(Vec<usize>, u64)> {
            let zeros = Tensor::zeros((batch, input.channels, h, w), DType::F32, device)?;
            let mut produced = 0;
            let dims = if device.is_cpu() {
                let mut tape = Tape::new(false);
                let x = tape.input(&zeros)?;
                network.run(&mut tape, &x, &mut produced)?.dims().to_vec()
            } else {
                network
                    .run(&mut CandleGraph::default(), &zeros, &mut produced)?
                    .dims()
                    .to_vec()
            };
            Ok((dims, produced))
        };
        let (dims, produced) = trial(&network, 1).map_err(|e| {
            format!(
                "running the graph once on zeros of its input size ({h}×{w}) failed: {}",
                error_line(&e)
            )
        })?;
        match dims[..] {
            [1, classes] if classes > 0 => {
                network.num_classes = classes;
                network.elements_per_image = produced;
                network.traced_size = (h, w);
            }
            _ => {
                return Err(format!(
                    "the graph's output has shape {dims:?} for one image; a classifier outputs [N, classes]"
                ))
            }
        }
        // Exporters that fix every shape (dynamo's default) write the batch size they were
        // traced with into Reshape targets: such a graph takes one image at a time.
        network.one_image_at_a_time = !matches!(trial(&network, 2), Ok((d, _)) if d == [2, network.num_classes]);
        Ok(network)
    }

    /// The logits [N, classes] of `x` [N, C, H, W] on `g`.
    pub fn build_on<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let n = g.dims(x).first().copied().unwrap_or(0);
        if self.one_image_at_a_time && n != 1 {
            let rows = (0..n)
                .map(|i| {
                    let xi = g.select(x, 0, &[i])?;
                    self.run(g, &xi, &mut 0)
                })
                .collect::<Result<Vec<_>>>()?;
            return g.concat(&rows, 0);
        }
        self.run(g, x, &mut 0)
    }

    /// Runs the graph, adding to `produced` the float elements the nodes produced.
    fn run<G: Graph>(&self, g: &mut G, x: &G::Value, produced: &mut u64) -> Result<G::Value> {
        let statics = self.shape_only_values(&g.dims(x))?;
        let mut values: Vec<Option<Value<G::Value>>> = vec![None; self.slots];
        for (s, k) in self.constants.iter().chain(statics.iter()) {
            values[*s] = Some(k.value());
        }
        values[self.input] = Some(Value::F(x.clone()));
        let mut ev = Evaluator {
            g,
            device: &self.device,
            produced: 0,
        };
        for (k, node) in self.nodes.iter().enumerate() {
            if !self.shape_only[k] {
                run_node(&mut ev, node, &mut values)?;
                for &s in &self.last_reads[k] {
                    values[s] = None;
                }
            }
        }
        *produced += ev.produced;
        match values[self.output].take() {
            Some(Value::F(v)) => Ok(v),
            Some(Value::C(c)) => ev.g.constant(&c),
            Some(_) => err("the graph's output is not a float tensor"),
            None => err("the graph's output was never computed"),
        }
    }

    /// The outputs of the shape-only nodes for an input of `dims`, computed once.
    fn shape_only_values(&self, dims: &[usize]) -> Result<ShapeOnlyValues> {
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(dims).cloned()) {
            return Ok(hit);
        }
        let mut values: Vec<Option<Value<Tensor>>> = vec![None; self.slots];
        for (s, k) in &self.constants {
            values[*s] = Some(k.value());
        }
        values[self.input] = Some(Value::ShapeOnly(dims.to_vec()));
        let mut g = CandleGraph::default();
        let mut ev = Evaluator {
            g: &mut g,
            device: &self.device,
            produced: 0,
        };
        let mut out = Vec::new();
        for (node, &only) in self.nodes.iter().zip(&self.shape_only) {
            if only {
                run_node(&mut ev, node, &mut values)?;
                for &o in &node.outputs {
                    let k = match &values[o] {
                        Some(Value::F(t)) => Known::Float(layers::Constant::new(t.clone())?),
                        Some(Value::C(c)) => Known::Float(c.clone()),
                        Some(Value::I(i)) => Known::Ints(i.clone()),
                        Some(Value::ShapeOnly(_)) | None => continue,
                    };
                    out.push((o, k));
                }
            }
        }
        let out = Arc::new(out);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(dims.to_vec(), out.clone());
        }
        Ok(out)
    }
}

fn run_node<G: Graph>(ev: &mut Evaluator<G>, node: &Node, values: &mut [Option<Value<G::Value>>]) -> Result<()> {
    let args: Vec<Option<&Value<G::Value>>> = node.inputs.iter().map(|i| i.and_then(|s| values[s].as_ref())).collect();
    let outputs = ev
        .eval(&node.op, &args)
        .map_err(|e| candle_core::Error::Msg(format!("{}: {}", node.label, error_line(&e))))?;
    for (slot, v) in node.outputs.iter().zip(outputs) {
        values[*slot] = Some(v);
    }
    Ok(())
}

/// Replaces `Mul(x, Sigmoid(x))` (either order), the SiLU both PyTorch exporters write, by
/// one SiLU node when nothing else reads the sigmoid: one buffer and one pass each way
/// instead of two buffers and four reverse passes.
fn fuse_silu(nodes: &mut Vec<Node>, output: usize) {
    let mut readers: HashMap<usize, usize> = HashMap::new();
    for node in nodes.iter() {
        for s in node.inputs.iter().flatten() {
            *readers.entry(*s).or_default() += 1;
        }
    }
    *readers.entry(output).or_default() += 1;
    // The sigmoid nodes by output slot: (node index, its input slot).
    let mut sigmoid_of: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut removed = vec![false; nodes.len()];
    for (j, node) in nodes.iter_mut().enumerate() {
        let fused = match (&node.op, &node.inputs[..], &node.outputs[..]) {
            (Op::Elementwise(Elementwise::Float(Unary::Sigmoid)), [Some(x)], [y]) => {
                sigmoid_of.insert(*y, (j, *x));
                None
            }
            (Op::Binary(BinaryOp::Mul), [Some(a), Some(b)], _) => {
                [(*a, *b), (*b, *a)].into_iter().find_map(|(x, s)| {
                    let &(i, input) = sigmoid_of.get(&s)?;
                    (input == x && readers.get(&s) == Some(&1)).then_some((i, x))
                })
            }
            _ => None,
        };
        if let Some((sigmoid, x)) = fused {
            node.op = Op::Elementwise(Elementwise::Float(Unary::Silu));
            node.inputs = vec![Some(x)];
            removed[sigmoid] = true;
        }
    }
    let mut k = 0;
    nodes.retain(|_| {
        k += 1;
        !removed[k - 1]
    });
}

/// Folds each BatchNorm, ReLU or ReLU6 whose input is a convolution's output that nothing
/// else reads into that convolution (the convolution then writes the folded node's output).
fn fuse_into_convolutions(nodes: &mut Vec<Node>, output: usize) {
    let mut readers: HashMap<usize, usize> = HashMap::new();
    for node in nodes.iter() {
        for s in node.inputs.iter().flatten() {
            *readers.entry(*s).or_default() += 1;
        }
    }
    *readers.entry(output).or_default() += 1;
    let mut producer: HashMap<usize, usize> = HashMap::new();
    let mut removed = vec![false; nodes.len()];
    for j in 0..nodes.len() {
        let source = match nodes[j].inputs.first() {
            Some(Some(s)) if readers.get(s) == Some(&1) => producer.get(s).copied(),
            _ => None,
        };
        let fused = source.and_then(|i| {
            let Op::Conv(conv, Activation::Identity) = &nodes[i].op else {
                return None;
            };
            match &nodes[j].op {
                Op::BatchNorm(bn) => {
                    let [gamma, beta, mean, var] = &bn.params;
                    let folded = conv.clone().fold_batch_norm(gamma, beta, mean, var, bn.eps).ok()?;
                    Some((i, Op::Conv(folded, Activation::Identity)))
                }
                op => conv_activation(op).map(|act| (i, Op::Conv(conv.clone(), act))),
            }
        });
        match fused {
            Some((i, op)) => {
                nodes[i].op = op;
                nodes[i].outputs = nodes[j].outputs.clone();
                removed[j] = true;
                for &o in &nodes[i].outputs {
                    producer.insert(o, i);
                }
            }
            None => {
                for &o in &nodes[j].outputs {
                    producer.insert(o, j);
                }
            }
        }
    }
    let mut k = 0;
    nodes.retain(|_| {
        k += 1;
        !removed[k - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: Op, inputs: &[usize], output: usize) -> Node {
        Node {
            op,
            inputs: inputs.iter().map(|&s| Some(s)).collect(),
            outputs: vec![output],
            label: String::new(),
        }
    }

    fn sigmoid() -> Op {
        Op::Elementwise(Elementwise::Float(Unary::Sigmoid))
    }

    fn is_silu(op: &Op) -> bool {
        matches!(op, Op::Elementwise(Elementwise::Float(Unary::Silu)))
    }

    #[test]
    fn sigmoid_times_its_own_input_becomes_one_silu() {
        for swapped in [false, true] {
            let mul_inputs = if swapped { [1, 0] } else { [0, 1] };
            let mut nodes = vec![
                node(sigmoid(), &[0], 1),
                node(Op::Binary(BinaryOp::Mul), &mul_inputs, 2),
            ];
            fuse_silu(&mut nodes, 2);
            assert_eq!(nodes.len(), 1);
            assert!(is_silu(&nodes[0].op));
            assert_eq!(nodes[0].inputs, vec![Some(0)]);
            assert_eq!(nodes[0].outputs, vec![2]);
        }
    }

    #[test]
    fn a_gate_on_other_features_or_a_shared_sigmoid_is_left_alone() {
        // Squeeze-excite: y · σ(z), z ≠ y.
        let mut gate = vec![node(sigmoid(), &[0], 1), node(Op::Binary(BinaryOp::Mul), &[5, 1], 2)];
        fuse_silu(&mut gate, 2);
        assert_eq!(gate.len(), 2);
        // σ(x) also read elsewhere (here: the graph output).
        let mut shared = vec![node(sigmoid(), &[0], 1), node(Op::Binary(BinaryOp::Mul), &[0, 1], 2)];
        fuse_silu(&mut shared, 1);
        assert_eq!(shared.len(), 2);
        assert!(!is_silu(&shared[1].op));
    }
}
