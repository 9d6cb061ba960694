//! ONNX classifiers (issue 8): models exported by PyTorch's two exporters give PyTorch's
//! logits and input gradients, BatchNorm is folded or run as an affine map with the
//! reference maths, and graphs with operators we lack are refused with their names.
//!
//! `tests/data/tiny_cnn_*.onnx` and the `.npy` references come from
//! `tests/data/make_tiny_onnx.py` (PyTorch 2.15, both `torch.onnx.export` exporters).

mod common;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use pathscope::export::npy::parse_npy_f32;
use pathscope::model::onnx::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TensorTypeProto, TypeProto, ValueInfoProto,
};
use pathscope::model::{Architecture, Classifier};
use prost::Message;

use common::{rel_l2, to_vec};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn npy(name: &str) -> (Vec<f32>, Vec<usize>) {
    parse_npy_f32(&std::fs::read(data(name)).unwrap()).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pathscope-onnx-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Logits, and the gradient of Σ_batch logit[target] through the tape (the CPU path) and
/// through candle's autograd (the path other devices take).
fn logits_and_gradients(model: &Classifier, x: &Tensor, target: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let classes = model.num_classes();
    let (logits, grad) = model
        .logits_and_input_gradient(x, |l| {
            (0..l.len())
                .map(|i| if i % classes == target { 1.0 } else { 0.0 })
                .collect()
        })
        .unwrap();
    let var = Var::from_tensor(x).unwrap();
    let reference = model.forward_autograd(var.as_tensor()).unwrap();
    let grads = reference
        .narrow(1, target, 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let candle_grad = to_vec(grads.get(var.as_tensor()).unwrap());
    (logits, to_vec(&grad), candle_grad)
}

/// Both PyTorch exports against PyTorch itself, on a batch of two 37×41 images (odd sizes
/// exercise the ceil-mode pooling and the strided convolutions' edges). Tolerance: relative
/// L2 1e-5 on logits and 1e-4 on gradients (f32, different summation orders; measured
/// ≤ 2e-7 and ≤ 1e-6).
#[test]
fn pytorch_exports_match_pytorch_logits_and_gradients() {
    let (input, dims) = npy("tiny_cnn_input.npy");
    let (expected_logits, _) = npy("tiny_cnn_logits.npy");
    let (expected_grad, _) = npy("tiny_cnn_grad_target3.npy");
    let x = Tensor::from_vec(input, dims, &Device::Cpu).unwrap();
    for file in ["tiny_cnn_torchscript.onnx", "tiny_cnn_dynamo.onnx"] {
        let model = Classifier::load(&data(file), &Device::Cpu).unwrap();
        assert_eq!(model.architecture(), Architecture::Onnx);
        assert_eq!(model.num_classes(), 10, "{file}");
        let (logits, tape_grad, candle_grad) = logits_and_gradients(&model, &x, 3);
        let e = rel_l2(&logits, &expected_logits);
        assert!(e < 1e-5, "{file}: logits rel L2 {e:.2e}");
        let forward = to_vec(&model.forward(&x).unwrap());
        assert!(rel_l2(&forward, &expected_logits) < 1e-5, "{file}: forward");
        let e = rel_l2(&tape_grad, &expected_grad);
        assert!(e < 1e-4, "{file}: tape gradient rel L2 {e:.2e}");
        let e = rel_l2(&candle_grad, &expected_grad);
        assert!(e < 1e-4, "{file}: candle gradient rel L2 {e:.2e}");
    }
}

// ---- building small graphs by hand ----

fn floats(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: values,
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("{op}_{output}"),
        attribute,
        ..Default::default()
    }
}

fn int64s(name: &str, dims: &[i64], values: Vec<i64>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 7,
        int64_data: values,
        ..Default::default()
    }
}

fn string_attr(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 3,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn image_input(channels: i64) -> ValueInfoProto {
    let dim = |v: Option<i64>| Dimension {
        dim_value: v,
        dim_param: if v.is_none() { Some("N".into()) } else { None },
    };
    ValueInfoProto {
        name: "image".into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: vec![dim(None), dim(Some(channels)), dim(Some(8)), dim(Some(8))],
                }),
            }),
        }),
    }
}

fn model(nodes: Vec<NodeProto>, initializer: Vec<TensorProto>, output: &str) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "pathscope-tests".into(),
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            initializer,
            input: vec![image_input(3)],
            output: vec![ValueInfoProto {
                name: output.into(),
                r#type: None,
            }],
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn ramp(n: usize, scale: f32, offset: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 23) as f32 / 23.0 * scale + offset)
        .collect()
}

/// BatchNorm on the input (no convolution before it: an affine map) and after a
/// convolution read twice (not foldable) and once (folded), against the same maths written
/// with candle tensor ops.
#[test]
fn batch_norm_folded_or_not_matches_the_formula() {
    let bn = |p: &str, c: usize| {
        vec![
            floats(&format!("{p}.g"), &[c as i64], ramp(c, 1.0, 0.5)),
            floats(&format!("{p}.b"), &[c as i64], ramp(c, 0.4, -0.2)),
            floats(&format!("{p}.m"), &[c as i64], ramp(c, 1.0, -0.5)),
            floats(&format!("{p}.v"), &[c as i64], ramp(c, 1.5, 0.5)),
        ]
    };
    let bn_node = |p: &str, x: &str, y: &str| {
        node(
            "BatchNormalization",
            &[
                x,
                &format!("{p}.g"),
                &format!("{p}.b"),
                &format!("{p}.m"),
                &format!("{p}.v"),
            ],
            y,
            vec![],
        )
    };
    let mut init = bn("bn0", 3);
    init.push(floats("w1", &[4, 3, 3, 3], ramp(108, 0.6, -0.3)));
    init.extend(bn("bn1", 4));
    init.push(floats("fc.w", &[5, 4], ramp(20, 1.0, -0.5)));
    init.push(floats("fc.b", &[5], ramp(5, 0.2, 0.0)));
    let conv_attrs = || vec![ints("pads", &[1, 1, 1, 1]), ints("strides", &[2, 2])];
    let nodes = vec![
        bn_node("bn0", "image", "a"),
        node("Conv", &["a", "w1"], "c", conv_attrs()),
        bn_node("bn1", "c", "d"),
        node("Relu", &["d"], "e", vec![]),
        // `c` is also read here, so bn1 cannot be folded into the convolution.
        node("Add", &["e", "c"], "f", vec![]),
        node("GlobalAveragePool", &["f"], "p", vec![]),
        node("Flatten", &["p"], "q", vec![]),
        node(
            "Gemm",
            &["q", "fc.w", "fc.b"],
            "logits",
            vec![AttributeProto {
                name: "transB".into(),
                r#type: 2,
                i: 1,
                ..Default::default()
            }],
        ),
    ];
    let bytes = model(nodes, init.clone(), "logits");
    let m = Classifier::load_onnx_bytes(Path::new("bn.onnx"), &bytes, &Device::Cpu).unwrap();
    assert_eq!(m.num_classes(), 5);

    let dev = Device::Cpu;
    let t = |name: &str| {
        let p = init.iter().find(|t| t.name == name).unwrap();
        let dims: Vec<usize> = p.dims.iter().map(|&d| d as usize).collect();
        Tensor::from_vec(p.float_data.clone(), dims, &dev).unwrap()
    };
    let bn_ref = |x: &Tensor, p: &str| {
        let c = x.dim(1).unwrap();
        let r = |n: &str| t(&format!("{p}.{n}")).reshape((1, c, 1, 1)).unwrap();
        let scale = r("g").broadcast_div(&(r("v") + 1e-5).unwrap().sqrt().unwrap()).unwrap();
        x.broadcast_sub(&r("m"))
            .unwrap()
            .broadcast_mul(&scale)
            .unwrap()
            .broadcast_add(&r("b"))
            .unwrap()
    };
    let x = Tensor::from_vec(ramp(2 * 3 * 8 * 8, 2.0, -1.0), (2, 3, 8, 8), &dev).unwrap();
    let a = bn_ref(&x, "bn0");
    let c = a.conv2d(&t("w1"), 1, 2, 1, 1).unwrap();
    let e = bn_ref(&c, "bn1").relu().unwrap();
    let q = (e + &c).unwrap().mean((2, 3)).unwrap();
    let expected = q
        .matmul(&t("fc.w").t().unwrap())
        .unwrap()
        .broadcast_add(&t("fc.b"))
        .unwrap();
    let got = to_vec(&m.forward(&x).unwrap());
    let err = rel_l2(&got, &to_vec(&expected));
    assert!(err < 1e-5, "rel L2 {err:.2e}");

    // Tape and candle gradients agree on this graph too.
    let (_, tape_grad, candle_grad) = logits_and_gradients(&m, &x, 2);
    let err = rel_l2(&tape_grad, &candle_grad);
    assert!(err < 1e-5, "gradients rel L2 {err:.2e}");
}

fn load_error(bytes: &[u8]) -> String {
    match Classifier::load_onnx_bytes(Path::new("m.onnx"), bytes, &Device::Cpu) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

/// A graph with operators no runner has (an upsampling, an einsum, a custom-domain op):
/// every missing operator is named, with counts, in one message.
#[test]
fn unsupported_operators_are_listed_by_name() {
    let init = vec![floats("w", &[4, 3, 1, 1], ramp(12, 1.0, -0.5))];
    let mut custom = node("FancyPool", &["m2"], "p", vec![]);
    custom.domain = "com.example".into();
    let nodes = vec![
        node("Conv", &["image", "w"], "c", vec![]),
        node("Resize", &["c"], "s", vec![]),
        node("Einsum", &["c", "s"], "m", vec![]),
        node("Resize", &["m"], "s2", vec![]),
        node("Mul", &["m", "s2"], "m2", vec![]),
        custom,
        node("Flatten", &["p"], "logits", vec![]),
    ];
    let message = load_error(&model(nodes, init, "logits"));
    assert!(
        message.contains("m.onnx: the ONNX graph uses operators Pathscope cannot run and differentiate: Einsum, Resize (×2), com.example::FancyPool."),
        "{message}"
    );
    assert!(message.contains("Supported: Abs, Add, And, AveragePool"), "{message}");
}

/// Malformed or unusable graphs: each is an error naming the problem, never a panic.
#[test]
fn bad_onnx_files_are_errors_naming_the_problem() {
    let w = || floats("w", &[4, 3, 3, 3], ramp(108, 1.0, -0.5));
    let head = |from: &str| {
        vec![
            node("GlobalAveragePool", &[from], "p", vec![]),
            node("Flatten", &["p"], "logits", vec![]),
        ]
    };
    let with_head = |mut nodes: Vec<NodeProto>, from: &str| {
        nodes.extend(head(from));
        nodes
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"this is not protobuf at all \xff\xff\xff".to_vec(),
            "not a valid ONNX model",
        ),
        (
            model(
                with_head(
                    vec![node("Conv", &["image", "w"], "c", vec![ints("dilations", &[2, 1])])],
                    "c",
                ),
                vec![w()],
                "logits",
            ),
            "Conv `Conv_c`: dilations [2, 1] differs between the axes",
        ),
        (
            model(
                with_head(
                    vec![node("Conv", &["image", "w"], "c", vec![ints("strides", &[1, 2])])],
                    "c",
                ),
                vec![w()],
                "logits",
            ),
            "strides [1, 2] differs between the axes",
        ),
        (
            model(vec![node("Conv", &["image", "w"], "c", vec![])], vec![w()], "c"),
            "the graph's output has shape [1, 4, 6, 6] for one image; a classifier outputs [N, classes]",
        ),
        (
            model(
                with_head(vec![node("Conv", &["image", "missing"], "c", vec![])], "c"),
                vec![w()],
                "logits",
            ),
            "its input `missing` is not the graph's input, an initializer or any node's output",
        ),
        (
            model(
                with_head(
                    vec![
                        node("Conv", &["image", "w"], "c", vec![]),
                        node("Pad", &["c", "pads"], "d", vec![string_attr("mode", "wrap")]),
                    ],
                    "d",
                ),
                vec![w(), int64s("pads", &[8], vec![0; 8])],
                "logits",
            ),
            "Pad `Pad_d`: attribute mode = wrap is not supported",
        ),
        (
            model(
                vec![
                    node("Conv", &["image", "w"], "c", vec![]),
                    node("Reshape", &["c", "shape"], "logits", vec![]),
                ],
                vec![w(), int64s("shape", &[2], vec![7, -1])],
                "logits",
            ),
            "Reshape `Reshape_logits`: Reshape of [1, 4, 6, 6] to [7, -1]: the sizes do not divide",
        ),
        (
            model(
                with_head(vec![node("Conv", &["image", "w"], "c", vec![])], "c"),
                vec![floats("w", &[4, 3, 3, 3], vec![1.0; 7])],
                "logits",
            ),
            "tensor `w` has shape [4, 3, 3, 3] (108 elements) but holds 7 values",
        ),
        (
            model(
                with_head(vec![node("Conv", &["image", "w"], "c", vec![])], "c"),
                vec![TensorProto {
                    data_location: 1,
                    ..floats("w", &[4, 3, 3, 3], vec![])
                }],
                "logits",
            ),
            "tensor `w` is stored externally but names no location",
        ),
        (
            model(
                with_head(vec![node("Conv", &["image", "w"], "c", vec![])], "c"),
                vec![floats("w", &[4, 2, 3, 3], ramp(72, 1.0, 0.0))],
                "logits",
            ),
            "conv2d: input has 3 channels, the layer expects 2",
        ),
    ];
    for (bytes, expected) in cases {
        let message = load_error(&bytes);
        assert!(message.starts_with("m.onnx: "), "{message}");
        assert!(message.contains(expected), "expected `{expected}` in: {message}");
    }

    // A half-downloaded export of a real model.
    let full = std::fs::read(data("tiny_cnn_dynamo.onnx")).unwrap();
    let message = load_error(&full[..full.len() / 2]);
    assert!(message.contains("not a valid ONNX model"), "{message}");
}

/// `pathscope explain` on an ONNX file writes a map; on a graph it cannot run, it prints
/// one line naming the operators.
#[test]
fn explain_runs_an_onnx_model_and_explains_refusals() {
    let dir = scratch("cli");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images/chelsea_cat.png");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(["explain", "--steps", "8", "--model"])
        .arg(data("tiny_cnn_torchscript.onnx"))
        .arg("--image")
        .arg(&image)
        .arg("--out")
        .arg(dir.join("map"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (map, dims) = parse_npy_f32(&std::fs::read(dir.join("map/attribution.npy")).unwrap()).unwrap();
    assert_eq!(dims, [3, 224, 224]);
    assert!(map.iter().any(|v| *v != 0.0) && map.iter().all(|v| v.is_finite()));

    let bad = dir.join("resize.onnx");
    let nodes = vec![
        node("Resize", &["image"], "s", vec![]),
        node("GlobalAveragePool", &["s"], "p", vec![]),
        node("Flatten", &["p"], "logits", vec![]),
    ];
    std::fs::write(&bad, model(nodes, vec![], "logits")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(["explain", "--model"])
        .arg(&bad)
        .arg("--image")
        .arg(&image)
        .arg("--out")
        .arg(dir.join("bad"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("resize.onnx: the ONNX graph uses operators Pathscope cannot run and differentiate: Resize."),
        "{stderr}"
    );
}

/// The sanity check re-draws named tensors block by block; an ONNX graph has none, which
/// it says in one line instead of failing later.
#[test]
fn sanity_check_refuses_an_onnx_model_with_the_reason() {
    let dir = scratch("sanity");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images/chelsea_cat.png");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(["sanity", "--model"])
        .arg(data("tiny_cnn_dynamo.onnx"))
        .arg("--image")
        .arg(&image)
        .arg("--out")
        .arg(dir.join("sanity.csv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("an ONNX graph, not a checkpoint of named tensors; cascading randomisation needs"),
        "{stderr}"
    );
    assert!(!dir.join("sanity.csv").exists());
}
