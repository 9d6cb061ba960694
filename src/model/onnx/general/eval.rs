//! One node of an ONNX graph on any [`Graph`]: float values flow through the graph (and
//! are differentiated there); integers, shapes and boolean masks stay on the host.

use candle_core::{Device, Result, Tensor};

use super::super::tensor;
use super::ints::{axes, axis, broadcast_shape, check_elements, err, pad_indices, reshape_dims, slice_indices, Ints};
use super::parse::{BinaryOp, Elementwise, Op, PadMode};
use crate::kernels::pointwise::broadcast_strides;
use crate::net::graph::{Binary, Graph, Reduction, Unary};
use crate::net::layers::{self, Activation};

/// A value of the interpreter.
#[derive(Debug, Clone)]
pub(super) enum Value<V> {
    /// A float value that depends on the input, on the graph.
    F(V),
    /// A float value known without the input (weights, folded shape-only nodes).
    C(layers::Constant),
    /// Integers (shapes, indices, masks).
    I(Ints),
    /// The input while only its shape is known (folding the shape-only nodes).
    ShapeOnly(Vec<usize>),
}

/// Evaluates nodes on `g`; `device` holds the constants it makes.
pub(super) struct Evaluator<'a, G: Graph> {
    pub g: &'a mut G,
    pub device: &'a Device,
    /// Float elements the evaluated nodes produced.
    pub produced: u64,
}

type Args<'v, V> = [Option<&'v Value<V>>];

fn input_needed<T>() -> Result<T> {
    err("the input's values are needed where only its shape is known")
}

impl<G: Graph> Evaluator<'_, G> {
    pub fn dims(&self, v: &Value<G::Value>) -> Vec<usize> {
        match v {
            Value::F(x) => self.g.dims(x),
            Value::C(c) => c.dims().to_vec(),
            Value::I(i) => i.dims.clone(),
            Value::ShapeOnly(d) => d.clone(),
        }
    }

    fn constant(&self, dims: &[usize], data: Vec<f32>) -> Result<layers::Constant> {
        layers::Constant::new(Tensor::from_vec(data, dims, self.device)?)
    }

    /// A float value on the graph.
    fn float(&mut self, v: &Value<G::Value>) -> Result<G::Value> {
        match v {
            Value::F(x) => Ok(x.clone()),
            Value::C(c) => self.g.constant(c),
            Value::I(i) => {
                let c = self.constant(&i.dims, i.data.iter().map(|&v| v as f32).collect())?;
                self.g.constant(&c)
            }
            Value::ShapeOnly(_) => input_needed(),
        }
    }

    /// A value's elements on the host (no gradient flows through them).
    fn host(&self, v: &Value<G::Value>) -> Result<(Vec<usize>, Vec<f32>)> {
        Ok(match v {
            Value::F(x) => (self.g.dims(x), self.g.host(x)?),
            Value::C(c) => (
                c.dims().to_vec(),
                match c.host() {
                    Some(h) => h.to_vec(),
                    None => c.tensor().flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1()?,
                },
            ),
            Value::I(i) => (i.dims.clone(), i.data.iter().map(|&v| v as f32).collect()),
            Value::ShapeOnly(_) => return input_needed(),
        })
    }

    fn ints(&self, v: &Value<G::Value>) -> Result<Ints> {
        match v {
            Value::I(i) => Ok(i.clone()),
            _ => {
                let (dims, data) = self.host(v)?;
                Ok(Ints {
                    dims,
                    data: data.iter().map(|&x| x as i64).collect(),
                })
            }
        }
    }

    fn float_result(&mut self, x: G::Value) -> Value<G::Value> {
        self.produced += self.g.dims(&x).iter().product::<usize>() as u64;
        Value::F(x)
    }

    fn reshaped(&mut self, v: &Value<G::Value>, dims: Vec<usize>) -> Result<Value<G::Value>> {
        if let Value::I(i) = v {
            return Ok(Value::I(i.reshaped(dims)?));
        }
        let from = self.dims(v);
        if from.iter().product::<usize>() != dims.iter().product::<usize>() {
            return err(format!("reshaping {from:?} to {dims:?} changes the element count"));
        }
        if from == dims {
            return Ok(v.clone());
        }
        let x = self.float(v)?;
        let y = self.g.reshape(&x, &dims)?;
        Ok(Value::F(y))
    }

    fn select(&mut self, v: &Value<G::Value>, a: usize, indices: &[usize]) -> Result<Value<G::Value>> {
        if let Value::I(i) = v {
            return Ok(Value::I(i.select(a, indices)));
        }
        let n = self.dims(v)[a];
        if indices.len() == n && indices.iter().enumerate().all(|(i, &k)| i == k) {
            return Ok(v.clone());
        }
        let x = self.float(v)?;
        let y = self.g.select(&x, a, indices)?;
        Ok(self.float_result(y))
    }

    fn unary(&mut self, v: &Value<G::Value>, op: Unary) -> Result<Value<G::Value>> {
        let x = self.float(v)?;
        let y = self.g.unary(&x, op)?;
        Ok(self.float_result(y))
    }

    fn binary(&mut self, a: &Value<G::Value>, b: &Value<G::Value>, op: BinaryOp) -> Result<Value<G::Value>> {
        let ints = matches!((a, b), (Value::I(_), Value::I(_)));
        if ints || op.is_comparison() || matches!(op, BinaryOp::Mod { .. }) {
            return self.host_binary(a, b, op, ints || op.is_comparison());
        }
        let graph_op = match op {
            BinaryOp::Add => Binary::Add,
            BinaryOp::Sub => Binary::Sub,
            BinaryOp::Mul => Binary::Mul,
            BinaryOp::Div => Binary::Div,
            BinaryOp::Max => Binary::Max,
            BinaryOp::Min => Binary::Min,
            BinaryOp::Pow => {
                // A constant exponent is a pointwise power; otherwise a^b = exp(b·ln a).
                if !matches!(b, Value::F(_)) {
                    let (_, e) = self.host(b)?;
                    if let [p] = e[..] {
                        return match p {
                            1.0 => Ok(a.clone()),
                            0.5 => self.unary(a, Unary::Sqrt),
                            p => self.unary(a, Unary::Powf(p)),
                        };
                    }
                }
                let ln = self.unary(a, Unary::Log)?;
                let product = self.binary(&ln, b, BinaryOp::Mul)?;
                return self.unary(&product, Unary::Exp);
            }
            _ => unreachable!("computed on the host"),
        };
        let (x, y) = (self.float(a)?, self.float(b)?);
        let z = self.g.binary(&x, &y, graph_op)?;
        Ok(self.float_result(z))
    }

    /// Integer arithmetic, comparisons and Mod, elementwise on the host.
    fn host_binary(
        &mut self,
        a: &Value<G::Value>,
        b: &Value<G::Value>,
        op: BinaryOp,
        ints_out: bool,
    ) -> Result<Value<G::Value>> {
        let to_f64 = |v: &Value<G::Value>| -> Result<(Vec<usize>, Vec<f64>)> {
            Ok(match v {
                Value::I(i) => (i.dims.clone(), i.data.iter().map(|&x| x as f64).collect()),
                _ => {
                    let (d, x) = self.host(v)?;
                    (d, x.iter().map(|&x| x as f64).collect())
                }
            })
        };
        let (da, xa) = to_f64(a)?;
        let (db, xb) = to_f64(b)?;
        let target = broadcast_shape(&da, &db)?;
        let (sa, sb) = (broadcast_strides(&da, &target), broadcast_strides(&db, &target));
        let integer_division = matches!((a, b), (Value::I(_), Value::I(_)));
        let mut out = Vec::with_capacity(target.iter().product());
        let mut bad = None;
        super::ints::for_each_index(&target, |idx| {
            let p = xa[idx.iter().zip(&sa).map(|(i, s)| i * s).sum::<usize>()];
            let q = xb[idx.iter().zip(&sb).map(|(i, s)| i * s).sum::<usize>()];
            let flag = |c: bool| if c { 1.0 } else { 0.0 };
            out.push(match op {
                BinaryOp::Add => p + q,
                BinaryOp::Sub => p - q,
                BinaryOp::Mul => p * q,
                BinaryOp::Div if integer_division => {
                    if q == 0.0 {
                        bad = Some("integer division by zero");
                        0.0
                    } else {
                        (p / q).trunc()
                    }
                }
                BinaryOp::Div => p / q,
                BinaryOp::Pow => p.powf(q),
                BinaryOp::Max => p.max(q),
                BinaryOp::Min => p.min(q),
                BinaryOp::Mod { fmod } => {
                    if q == 0.0 {
                        bad = Some("Mod by zero");
                        0.0
                    } else if fmod {
                        p % q
                    } else {
                        // The sign of the divisor, as Python's %.
                        p - q * (p / q).floor()
                    }
                }
                BinaryOp::Equal => flag(p == q),
                BinaryOp::Less => flag(p < q),
                BinaryOp::LessOrEqual => flag(p <= q),
                BinaryOp::Greater => flag(p > q),
                BinaryOp::GreaterOrEqual => flag(p >= q),
                BinaryOp::And => flag(p != 0.0 && q != 0.0),
                BinaryOp::Or => flag(p != 0.0 || q != 0.0),
            });
        });
        if let Some(m) = bad {
            return err(m);
        }
        Ok(if ints_out {
            Value::I(Ints {
                dims: target,
                data: out.iter().map(|&v| v as i64).collect(),
            })
        } else {
            Value::C(self.constant(&target, out.iter().map(|&v| v as f32).collect())?)
        })
    }

    /// Softmax (or log-softmax) along `a`; before opset 13 over the input seen as 2-D
    /// [before `a`, from `a` on].
    fn softmax(&mut self, v: &Value<G::Value>, a: i64, log: bool, coerce_2d: bool) -> Result<Value<G::Value>> {
        let d = self.dims(v);
        let a = axis(a, d.len())?;
        let x = self.float(v)?;
        let last = d.len() - 1;
        let y = if coerce_2d {
            let flat = [d[..a].iter().product(), d[a..].iter().product()];
            let x2 = self.g.reshape(&x, &flat)?;
            let y2 = self.g.softmax(&x2, log)?;
            self.g.reshape(&y2, &d)?
        } else if a == last {
            self.g.softmax(&x, log)?
        } else {
            let mut perm: Vec<usize> = (0..d.len()).filter(|&i| i != a).collect();
            perm.push(a);
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            let t = self.g.permute(&x, &perm)?;
            let s = self.g.softmax(&t, log)?;
            self.g.permute(&s, &inverse)?
        };
        Ok(self.float_result(y))
    }

    fn matmul(&mut self, a: &Value<G::Value>, b: &Value<G::Value>) -> Result<Value<G::Value>> {
        // 1-D operands as numpy treats them: a row vector on the left, a column on the right.
        let (da, db) = (self.dims(a), self.dims(b));
        if da.is_empty() || db.is_empty() {
            return err("MatMul of a scalar");
        }
        let a2 = if da.len() == 1 {
            self.reshaped(a, vec![1, da[0]])?
        } else {
            a.clone()
        };
        let b2 = if db.len() == 1 {
            self.reshaped(b, vec![db[0], 1])?
        } else {
            b.clone()
        };
        let (x, y) = (self.float(&a2)?, self.float(&b2)?);
        let z = self.g.matmul(&x, &y, false)?;
        let mut out = self.float_result(z);
        if da.len() == 1 || db.len() == 1 {
            let mut dims = self.dims(&out);
            if da.len() == 1 {
                dims.remove(dims.len() - 2);
            }
            if db.len() == 1 {
                dims.pop();
            }
            out = self.reshaped(&out, dims)?;
        }
        Ok(out)
    }

    fn pad(&mut self, op: &Op, args: &Args<G::Value>) -> Result<Value<G::Value>> {
        let Op::Pad { mode, pads, value } = op else {
            unreachable!("a Pad")
        };
        let x = arg(args, 0)?;
        if matches!(x, Value::I(_)) {
            return err("Pad of integers is not supported");
        }
        let rank = self.dims(x).len();
        let pads: Vec<i64> = match (pads, opt(args, 1)) {
            (Some(p), _) => p.clone(),
            (None, Some(v)) => self.ints(v)?.data,
            _ => return err("Pad without pads"),
        };
        let value = match opt(args, 2) {
            Some(v) => self.host(v)?.1.first().copied().unwrap_or(0.0),
            None => *value,
        };
        let pad_axes: Vec<usize> = match opt(args, 3) {
            Some(v) => self
                .ints(v)?
                .data
                .iter()
                .map(|&a| axis(a, rank))
                .collect::<Result<_>>()?,
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * pad_axes.len() {
            return err(format!("{} pads for {} axes", pads.len(), pad_axes.len()));
        }
        let mut y = x.clone();
        for (k, &a) in pad_axes.iter().enumerate() {
            let (before, after) = (pads[k], pads[k + pad_axes.len()]);
            let n = self.dims(&y)[a] as i64;
            // Negative pads crop.
            if before < 0 || after < 0 {
                let start = (-before).max(0);
                let end = n - (-after).max(0);
                let kept: Vec<usize> = (start..end.max(start)).map(|i| i as usize).collect();
                y = self.select(&y, a, &kept)?;
            }
            let (before, after) = (before.max(0) as usize, after.max(0) as usize);
            if before + after == 0 {
                continue;
            }
            if before > 1 << 16 || after > 1 << 16 {
                return err(format!("padding of {before} and {after} elements"));
            }
            let mut grown = self.dims(&y);
            grown[a] += before + after;
            check_elements(&grown, "Pad")?;
            let n = self.dims(&y)[a];
            y = match mode {
                PadMode::Constant => {
                    let v = self.float(&y)?;
                    let p = self.g.pad(&v, a, before, after, value)?;
                    self.float_result(p)
                }
                PadMode::Reflect | PadMode::Edge => {
                    let indices = pad_indices(n, before, after, *mode == PadMode::Reflect)?;
                    self.select(&y, a, &indices)?
                }
            };
        }
        Ok(y)
    }

    fn scatter_nd(
        &mut self,
        data: &Value<G::Value>,
        indices: &Ints,
        updates: &Value<G::Value>,
    ) -> Result<Value<G::Value>> {
        let dims = self.dims(data);
        let k = *indices
            .dims
            .last()
            .ok_or_else(|| candle_core::Error::Msg("ScatterND with scalar indices".into()))?;
        if k > dims.len() || k == 0 {
            return err("ScatterND indices longer than the data's rank");
        }
        let slice: usize = dims[k..].iter().product();
        let strides = broadcast_strides(&dims, &dims);
        // The element positions each update row writes, in order.
        let mut positions = Vec::new();
        for tuple in indices.data.chunks(k) {
            let mut base = 0usize;
            for (a, &i) in tuple.iter().enumerate() {
                let n = dims[a] as i64;
                let i = if i < 0 { i + n } else { i };
                if !(0..n).contains(&i) {
                    return err(format!("ScatterND index {i} out of range for an axis of {n}"));
                }
                base += i as usize * strides[a];
            }
            positions.extend(base..base + slice);
        }
        let update_count: usize = self.dims(updates).iter().product();
        if update_count != positions.len() {
            return err("ScatterND updates do not match its indices");
        }
        if let Value::I(d) = data {
            let u = self.ints(updates)?;
            let mut out = d.data.clone();
            for (p, v) in positions.iter().zip(&u.data) {
                out[*p] = *v;
            }
            return Ok(Value::I(Ints { dims, data: out }));
        }
        let (d, u) = (self.float(data)?, self.float(updates)?);
        let y = self.g.scatter(&d, &positions, &u)?;
        Ok(self.float_result(y))
    }

    pub fn eval(&mut self, op: &Op, args: &Args<G::Value>) -> Result<Vec<Value<G::Value>>> {
        let one = |v: Value<G::Value>| Ok(vec![v]);
        match op {
            Op::Identity => one(arg(args, 0)?.clone()),
            Op::Elementwise(e) => {
                let x = arg(args, 0)?;
                if let Value::I(i) = x {
                    return one(Value::I(match e {
                        Elementwise::Neg => i.map(|v| -v),
                        Elementwise::Abs => i.map(|v| v.abs()),
                        Elementwise::Not => i.map(|v| (v == 0) as i64),
                        Elementwise::Ceil | Elementwise::Floor => i.clone(),
                        Elementwise::Float(u) => return one(self.unary(x, *u)?),
                    }));
                }
                one(match e {
                    Elementwise::Float(u) => self.unary(x, *u)?,
                    Elementwise::Neg => self.unary(x, Unary::Neg)?,
                    Elementwise::Abs => self.unary(x, Unary::Abs)?,
                    Elementwise::Not => return err("Not of a float value"),
                    // Piecewise constant: no gradient, computed on the host.
                    Elementwise::Ceil | Elementwise::Floor => {
                        let (dims, v) = self.host(x)?;
                        let f = if *e == Elementwise::Ceil { f32::ceil } else { f32::floor };
                        Value::C(self.constant(&dims, v.into_iter().map(f).collect())?)
                    }
                })
            }
            Op::Binary(b) => one(self.binary(arg(args, 0)?, arg(args, 1)?, *b)?),
            Op::Variadic(b) => {
                let mut acc = arg(args, 0)?.clone();
                for i in 1..args.len() {
                    acc = self.binary(&acc, arg(args, i)?, *b)?;
                }
                one(acc)
            }
            Op::Softmax { axis, log, coerce_2d } => one(self.softmax(arg(args, 0)?, *axis, *log, *coerce_2d)?),
            Op::Where => {
                let cond = self.ints(arg(args, 0)?)?;
                let (a, b) = (arg(args, 1)?, arg(args, 2)?);
                if let (Value::I(p), Value::I(q)) = (a, b) {
                    let target = broadcast_shape(&broadcast_shape(&cond.dims, &p.dims)?, &q.dims)?;
                    let (c, p, q) = (
                        cond.broadcast_to(&target),
                        p.broadcast_to(&target),
                        q.broadcast_to(&target),
                    );
                    let data = c
                        .data
                        .iter()
                        .zip(p.data.iter().zip(&q.data))
                        .map(|(&m, (&x, &y))| if m != 0 { x } else { y })
                        .collect();
                    return one(Value::I(Ints { dims: target, data }));
                }
                let mask = self.constant(&cond.dims, cond.data.iter().map(|&m| (m != 0) as u8 as f32).collect())?;
                let (x, y) = (self.float(a)?, self.float(b)?);
                let z = self.g.select_where(&mask, &x, &y)?;
                one(self.float_result(z))
            }
            Op::Conv(conv, act) => {
                let x = self.float(arg(args, 0)?)?;
                if self.g.dims(&x).len() != 4 {
                    return err(format!("Conv of a rank-{} value", self.g.dims(&x).len()));
                }
                let y = self.g.conv(&x, conv, *act)?;
                one(self.float_result(y))
            }
            Op::BatchNorm(bn) => {
                let v = arg(args, 0)?;
                let rank = self.dims(v).len();
                let c = bn.scale.len();
                if rank < 2 || self.dims(v)[1] != c {
                    return err(format!("BatchNormalization of {c} channels over {:?}", self.dims(v)));
                }
                let (scale, shift) = match bn.by_rank.get(rank - 2) {
                    Some(pair) => pair.clone(),
                    None => {
                        let mut dims = vec![c];
                        dims.resize(rank - 1, 1);
                        (
                            self.constant(&dims, bn.scale.clone())?,
                            self.constant(&dims, bn.shift.clone())?,
                        )
                    }
                };
                let scaled = self.binary(v, &Value::C(scale), BinaryOp::Mul)?;
                one(self.binary(&scaled, &Value::C(shift), BinaryOp::Add)?)
            }
            Op::LayerNorm { axis: a, eps } => {
                let v = arg(args, 0)?;
                let from = axis(*a, self.dims(v).len())?;
                let x = self.float(v)?;
                let y = self.g.layer_norm(&x, from, *eps)?;
                let mut y = self.float_result(y);
                if let Some(scale) = opt(args, 1) {
                    y = self.binary(&y, scale, BinaryOp::Mul)?;
                }
                if let Some(bias) = opt(args, 2) {
                    y = self.binary(&y, bias, BinaryOp::Add)?;
                }
                one(y)
            }
            Op::MaxPool(pool) => {
                let x = self.float(arg(args, 0)?)?;
                if self.g.dims(&x).len() != 4 {
                    return err(format!("MaxPool of a rank-{} value", self.g.dims(&x).len()));
                }
                let y = self.g.max_pool(&x, *pool)?;
                one(self.float_result(y))
            }
            Op::AveragePool(pool) => {
                let x = self.float(arg(args, 0)?)?;
                if self.g.dims(&x).len() != 4 {
                    return err(format!("AveragePool of a rank-{} value", self.g.dims(&x).len()));
                }
                let y = self.g.avg_pool(&x, *pool)?;
                one(self.float_result(y))
            }
            Op::GlobalPool { max } => {
                let v = arg(args, 0)?;
                let rank = self.dims(v).len();
                if rank < 3 {
                    return err("global pooling of a value without spatial axes");
                }
                let spatial: Vec<usize> = (2..rank).collect();
                let x = self.float(v)?;
                let y = self
                    .g
                    .reduce(&x, &spatial, if *max { Reduction::Max } else { Reduction::Mean })?;
                one(self.float_result(y))
            }
            Op::Reduce {
                kind,
                axes: attr_axes,
                keepdims,
                noop_with_empty_axes,
            } => {
                let v = arg(args, 0)?;
                let d = self.dims(v);
                let list: Vec<i64> = match (attr_axes, opt(args, 1)) {
                    (Some(a), _) => a.clone(),
                    (None, Some(a)) => self.ints(a)?.data,
                    (None, None) => vec![],
                };
                if list.is_empty() && *noop_with_empty_axes {
                    return one(v.clone());
                }
                let reduced = if list.is_empty() {
                    (0..d.len()).collect()
                } else {
                    axes(&list, d.len())?
                };
                if reduced.iter().any(|&a| d[a] == 0) {
                    return err(format!("a reduction over an empty axis of {d:?}"));
                }
                let y = if let Value::I(i) = v {
                    Value::I(i.reduce(&reduced, |g| match kind {
                        Reduction::Sum => g.iter().sum(),
                        Reduction::Mean => g.iter().sum::<i64>() / g.len() as i64,
                        Reduction::Max => g.iter().copied().max().unwrap_or(0),
                        Reduction::Min => g.iter().copied().min().unwrap_or(0),
                    }))
                } else {
                    let x = self.float(v)?;
                    let y = self.g.reduce(&x, &reduced, *kind)?;
                    self.float_result(y)
                };
                if *keepdims {
                    return one(y);
                }
                let kept = d
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !reduced.contains(i))
                    .map(|(_, &n)| n)
                    .collect();
                one(self.reshaped(&y, kept)?)
            }
            Op::MatMul => one(self.matmul(arg(args, 0)?, arg(args, 1)?)?),
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                let (a, b) = (arg(args, 0)?, arg(args, 1)?);
                let (da, db) = (self.dims(a), self.dims(b));
                if da.len() != 2 || db.len() != 2 {
                    return err(format!("Gemm of {da:?} and {db:?}"));
                }
                let mut x = self.float(a)?;
                if *trans_a {
                    x = self.g.permute(&x, &[1, 0])?;
                }
                let w = self.float(b)?;
                let y = self.g.matmul(&x, &w, *trans_b)?;
                let mut y = self.float_result(y);
                if *alpha != 1.0 {
                    y = self.unary(&y, Unary::Affine { mul: *alpha, add: 0.0 })?;
                }
                if let Some(c) = opt(args, 2) {
                    let c = if *beta != 1.0 {
                        self.unary(c, Unary::Affine { mul: *beta, add: 0.0 })?
                    } else {
                        c.clone()
                    };
                    y = self.binary(&y, &c, BinaryOp::Add)?;
                }
                one(y)
            }
            Op::Transpose(perm) => {
                let v = arg(args, 0)?;
                let rank = self.dims(v).len();
                let perm: Vec<usize> = perm.clone().unwrap_or_else(|| (0..rank).rev().collect());
                if perm.len() != rank {
                    return err(format!("a permutation of {} axes for a rank-{rank} value", perm.len()));
                }
                if let Value::I(i) = v {
                    return one(Value::I(i.permute(&perm)));
                }
                // Moving only axes of size 1 keeps the elements in order: a reshape.
                let d = self.dims(v);
                let moved: Vec<usize> = perm.iter().copied().filter(|&p| d[p] != 1).collect();
                if moved.windows(2).all(|w| w[0] < w[1]) {
                    return one(self.reshaped(v, perm.iter().map(|&p| d[p]).collect())?);
                }
                let x = self.float(v)?;
                let y = self.g.permute(&x, &perm)?;
                one(self.float_result(y))
            }
            Op::Reshape { allowzero } => {
                let v = arg(args, 0)?;
                let shape = self.ints(arg(args, 1)?)?.data;
                let dims = reshape_dims(&self.dims(v), &shape, *allowzero)?;
                one(self.reshaped(v, dims)?)
            }
            Op::Flatten(a) => {
                let v = arg(args, 0)?;
                let d = self.dims(v);
                let a = if *a < 0 { *a + d.len() as i64 } else { *a };
                if !(0..=d.len() as i64).contains(&a) {
                    return err(format!("Flatten at axis {a} of a rank-{} value", d.len()));
                }
                let a = a as usize;
                one(self.reshaped(v, vec![d[..a].iter().product(), d[a..].iter().product()])?)
            }
            Op::Squeeze(attr_axes) => {
                let v = arg(args, 0)?;
                let d = self.dims(v);
                let list = match (attr_axes, opt(args, 1)) {
                    (Some(a), _) => Some(a.clone()),
                    (None, Some(a)) => Some(self.ints(a)?.data),
                    _ => None,
                };
                let keep: Vec<usize> = match list {
                    None => d.iter().copied().filter(|&n| n != 1).collect(),
                    Some(list) => {
                        let gone = axes(&list, d.len())?;
                        if let Some(&a) = gone.iter().find(|&&a| d[a] != 1) {
                            return err(format!("Squeeze of axis {a}, of size {}", d[a]));
                        }
                        d.iter()
                            .enumerate()
                            .filter(|(i, _)| !gone.contains(i))
                            .map(|(_, &n)| n)
                            .collect()
                    }
                };
                one(self.reshaped(v, keep)?)
            }
            Op::Unsqueeze(attr_axes) => {
                let v = arg(args, 0)?;
                let d = self.dims(v);
                let list = match (attr_axes, opt(args, 1)) {
                    (Some(a), _) => a.clone(),
                    (None, Some(a)) => self.ints(a)?.data,
                    _ => return err("Unsqueeze without axes"),
                };
                let rank = d.len() + list.len();
                let new = axes(&list, rank)?;
                if new.len() != list.len() {
                    return err(format!("Unsqueeze axes {list:?} repeat"));
                }
                let mut src = d.iter();
                let out = (0..rank)
                    .map(|i| {
                        if new.contains(&i) {
                            1
                        } else {
                            src.next().copied().unwrap_or(1)
                        }
                    })
                    .collect();
                one(self.reshaped(v, out)?)
            }
            Op::Concat(a) => {
                let parts: Vec<&Value<G::Value>> = args.iter().filter_map(|v| *v).collect();
                let Some(first) = parts.first() else {
                    return err("Concat of nothing");
                };
                let rank = self.dims(first).len();
                let a = axis(*a, rank)?;
                for p in &parts {
                    let d = self.dims(p);
                    let f = self.dims(first);
                    if d.len() != rank || d.iter().zip(&f).enumerate().any(|(i, (x, y))| i != a && x != y) {
                        return err(format!("Concat along axis {a} of shapes {f:?} and {d:?}"));
                    }
                }
                if parts.iter().all(|p| matches!(p, Value::I(_))) {
                    let ints: Vec<Ints> = parts.iter().map(|p| self.ints(p)).collect::<Result<_>>()?;
                    return one(Value::I(Ints::concat(&ints, a)?));
                }
                let values: Vec<G::Value> = parts.iter().map(|p| self.float(p)).collect::<Result<_>>()?;
                let y = self.g.concat(&values, a)?;
                one(self.float_result(y))
            }
            Op::Split {
                axis: a,
                split,
                num_outputs,
            } => {
                let v = arg(args, 0)?;
                let d = self.dims(v);
                let a = axis(*a, d.len())?;
                let sizes: Vec<usize> = match (split, opt(args, 1)) {
                    (Some(s), _) => s.iter().map(|&v| v.max(0) as usize).collect(),
                    (None, Some(s)) => self.ints(s)?.data.iter().map(|&v| v.max(0) as usize).collect(),
                    (None, None) => {
                        let each = d[a].div_ceil(*num_outputs);
                        (0..*num_outputs)
                            .map(|i| each.min(d[a].saturating_sub(i * each)))
                            .collect()
                    }
                };
                if sizes.iter().sum::<usize>() != d[a] {
                    return err(format!("Split of {} along axis {a} into {sizes:?}", d[a]));
                }
                let mut start = 0;
                let mut out = Vec::with_capacity(sizes.len());
                for s in sizes {
                    let indices: Vec<usize> = (start..start + s).collect();
                    out.push(self.select(v, a, &indices)?);
                    start += s;
                }
                Ok(out)
            }
            Op::Slice => {
                let v = arg(args, 0)?;
                let d = self.dims(v);
                let starts = self.ints(arg(args, 1)?)?.data;
                let ends = self.ints(arg(args, 2)?)?.data;
                let slice_axes: Vec<i64> = match opt(args, 3) {
                    Some(a) => self.ints(a)?.data,
                    None => (0..starts.len() as i64).collect(),
                };
                let steps: Vec<i64> = match opt(args, 4) {
                    Some(s) => self.ints(s)?.data,
                    None => vec![1; starts.len()],
                };
                if ends.len() != starts.len() || slice_axes.len() != starts.len() || steps.len() != starts.len() {
                    return err("Slice's starts, ends, axes and steps differ in length");
                }
                let mut y = v.clone();
                for i in 0..starts.len() {
                    let a = axis(slice_axes[i], d.len())?;
                    let indices = slice_indices(d[a] as i64, starts[i], ends[i], steps[i])?;
                    y = self.select(&y, a, &indices)?;
                }
                one(y)
            }
            Op::Gather(a) => {
                let v = arg(args, 0)?;
                let d = self.dims(v);
                let a = axis(*a, d.len())?;
                let idx = self.ints(arg(args, 1)?)?;
                let n = d[a] as i64;
                let flat: Vec<usize> = idx
                    .data
                    .iter()
                    .map(|&i| {
                        let j = if i < 0 { i + n } else { i };
                        if (0..n).contains(&j) {
                            Ok(j as usize)
                        } else {
                            err(format!("Gather index {i} out of range for an axis of {n}"))
                        }
                    })
                    .collect::<Result<_>>()?;
                let picked = self.select(v, a, &flat)?;
                let mut dims: Vec<usize> = d[..a].to_vec();
                dims.extend(&idx.dims);
                dims.extend(&d[a + 1..]);
                one(self.reshaped(&picked, dims)?)
            }
            Op::Expand => {
                let v = arg(args, 0)?;
                let shape: Vec<usize> = self
                    .ints(arg(args, 1)?)?
                    .data
                    .iter()
                    .map(|&s| usize::try_from(s).map_err(|_| candle_core::Error::Msg(format!("Expand to size {s}"))))
                    .collect::<Result<_>>()?;
                let d = self.dims(v);
                let target = broadcast_shape(&d, &shape)?;
                check_elements(&target, "Expand")?;
                if target == d {
                    return one(v.clone());
                }
                if let Value::I(i) = v {
                    return one(Value::I(i.broadcast_to(&target)));
                }
                let x = self.float(v)?;
                let y = self.g.broadcast_to(&x, &target)?;
                one(self.float_result(y))
            }
            Op::Pad { .. } => one(self.pad(op, args)?),
            Op::ConstantOfShape(c) => {
                let shape: Vec<usize> = self
                    .ints(arg(args, 0)?)?
                    .data
                    .iter()
                    .map(|&v| usize::try_from(v).ok().filter(|&v| v < 1 << 28))
                    .collect::<Option<_>>()
                    .ok_or_else(|| candle_core::Error::Msg("ConstantOfShape of a negative or huge shape".into()))?;
                check_elements(&shape, "ConstantOfShape")?;
                let n: usize = shape.iter().product();
                one(match c {
                    tensor::Constant::Float { data, .. } => {
                        Value::C(self.constant(&shape, vec![data.first().copied().unwrap_or(0.0); n])?)
                    }
                    tensor::Constant::Int { data, .. } => Value::I(Ints {
                        dims: shape,
                        data: vec![data.first().copied().unwrap_or(0); n],
                    }),
                })
            }
            Op::Cast { to_float, to_bool } => {
                let v = arg(args, 0)?;
                one(match (v, to_float) {
                    (Value::F(_) | Value::C(_), true) => v.clone(),
                    (Value::I(i), true) => {
                        Value::C(self.constant(&i.dims, i.data.iter().map(|&v| v as f32).collect())?)
                    }
                    (Value::ShapeOnly(_), _) => return input_needed(),
                    (_, false) => {
                        let (dims, data) = match v {
                            Value::I(i) => (i.dims.clone(), i.data.clone()),
                            _ => {
                                // Float to integer truncates toward zero.
                                let (dims, f) = self.host(v)?;
                                (dims, f.iter().map(|&x| x.trunc() as i64).collect())
                            }
                        };
                        Value::I(Ints {
                            dims,
                            data: if *to_bool {
                                data.iter().map(|&x| (x != 0) as i64).collect()
                            } else {
                                data
                            },
                        })
                    }
                })
            }
            Op::Shape { start, end } => {
                let d = self.dims(arg(args, 0)?);
                let r = d.len() as i64;
                let clip = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (s, e) = (clip(*start), clip(end.unwrap_or(r)));
                one(Value::I(Ints::vector(
                    d[s..e.max(s)].iter().map(|&v| v as i64).collect(),
                )))
            }
            Op::Size => one(Value::I(Ints::scalar(
                self.dims(arg(args, 0)?).iter().product::<usize>() as i64,
            ))),
            Op::Range => {
                let (s, l, dl) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
                if let (Value::I(s), Value::I(l), Value::I(dl)) = (s, l, dl) {
                    let (Some(&s), Some(&l), Some(&dl)) = (s.data.first(), l.data.first(), dl.data.first()) else {
                        return err("Range of empty bounds");
                    };
                    if dl == 0 {
                        return err("Range with a zero step");
                    }
                    let n = ((l as f64 - s as f64) / dl as f64).ceil().max(0.0);
                    if n > (1u64 << 28) as f64 {
                        return err(format!("Range of {n} elements"));
                    }
                    let at = |k: i64| s.saturating_add(k.saturating_mul(dl));
                    return one(Value::I(Ints::vector((0..n as i64).map(at).collect())));
                }
                let first = |v: &Value<G::Value>| -> Result<f32> {
                    self.host(v)?
                        .1
                        .first()
                        .copied()
                        .ok_or_else(|| candle_core::Error::Msg("Range of empty bounds".into()))
                };
                let (s, l, dl) = (first(s)?, first(l)?, first(dl)?);
                if dl == 0.0 {
                    return err("Range with a zero step");
                }
                let n = ((l - s) / dl).ceil().max(0.0);
                if n.is_nan() || n >= (1u64 << 28) as f32 {
                    return err(format!("Range of {n} elements"));
                }
                let n = n as usize;
                one(Value::C(
                    self.constant(&[n], (0..n).map(|k| s + k as f32 * dl).collect())?,
                ))
            }
            Op::ScatterND => {
                let indices = self.ints(arg(args, 1)?)?;
                one(self.scatter_nd(arg(args, 0)?, &indices, arg(args, 2)?)?)
            }
        }
    }
}

fn arg<'v, V>(args: &Args<'v, V>, i: usize) -> Result<&'v Value<V>> {
    args.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| candle_core::Error::Msg(format!("input {i} is missing")))
}

fn opt<'v, V>(args: &Args<'v, V>, i: usize) -> Option<&'v Value<V>> {
    args.get(i).copied().flatten()
}

/// Whether the activation `op` may be fused into a convolution before it.
pub(super) fn conv_activation(op: &Op) -> Option<Activation> {
    match op {
        Op::Elementwise(Elementwise::Float(Unary::Clamp { lo, hi })) if *lo == 0.0 => {
            if *hi == f32::INFINITY {
                Some(Activation::Relu)
            } else if *hi == 6.0 {
                Some(Activation::Relu6)
            } else {
                None
            }
        }
        _ => None,
    }
}
