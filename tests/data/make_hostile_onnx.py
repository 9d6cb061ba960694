"""Writes malformed and hostile ONNX models into tests/data/onnx/hostile/ for
tests/onnx_hostile.rs (issue 19, "Bad input"): each must be refused with a one-line error
that names the problem, never a panic, a hang or an allocation the machine cannot make.

Every model is a variant of one small classifier, x [1, 3, 8, 8] → Conv (4 filters, 3×3,
pad 1) → Relu → GlobalAveragePool → Flatten → Gemm (5 classes) → y [1, 5], with one thing
broken. Each file is a few hundred bytes.

It also writes seeds for the `onnx_model` fuzz target into fuzz/seeds/onnx_model/: these
models, and a few of the reduced torchvision families of tests/data/onnx/ (graphs that run
on the interpreter's operators: attention, LayerNorm, GELU, shape arithmetic), those with
a .onnx.data file framed as the target reads them: [model length: u32 LE][model][data],
their external data locations renamed to the `model.onnx.data` the target writes.

Run from the repository root with any Python that has onnx and numpy:
    python3 tests/data/make_hostile_onnx.py
"""

import os
import shutil
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx", "hostile")
SEEDS = os.path.join(HERE, "..", "..", "fuzz", "seeds", "onnx_model")

rng = np.random.default_rng(19)
W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
B = rng.standard_normal((5, 4)).astype(np.float32)
C = rng.standard_normal((5,)).astype(np.float32)


def value(name, elem=TensorProto.FLOAT, shape=(1, 3, 8, 8)):
    return helper.make_tensor_value_info(name, elem, list(shape))


def init(name, array):
    return numpy_helper.from_array(array, name)


def external(name, dims, location, offset=None, length=None):
    """A float initializer whose bytes are in an external file."""
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for key, v in [("location", location), ("offset", offset), ("length", length)]:
        if v is not None:
            e = t.external_data.add()
            e.key = key
            e.value = str(v)
    return t


def head():
    """Conv → Relu → GlobalAveragePool → Flatten: `flat` [1, 4]."""
    return [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["flat"], name="flatten", axis=1),
    ]


def gemm(src="flat"):
    return helper.make_node("Gemm", [src, "B", "C"], ["y"], name="fc", transB=1)


def model(nodes, inits, inputs=None, outputs=None, opset=17):
    graph = helper.make_graph(
        nodes,
        "hostile",
        inputs if inputs is not None else [value("x")],
        outputs if outputs is not None else [value("y", shape=(1, 5))],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_hostile_onnx")
    m.ir_version = 8
    return m


def base_inits(w=None):
    return [w if w is not None else init("W", W), init("B", B), init("C", C)]


def save(name, m):
    data = m.SerializeToString()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    assert len(data) < 20_000, name


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)

    # External data: a location that climbs out of the model's folder, an absolute one,
    # a range past the end of the file, an offset that overflows, a file that is missing.
    save("ext_escape.onnx", model(head() + [gemm()], base_inits(external("W", [4, 3, 3, 3], "../secret.bin"))))
    save("ext_absolute.onnx", model(head() + [gemm()], base_inits(external("W", [4, 3, 3, 3], "/etc/passwd"))))
    save(
        "ext_past_end.onnx",
        model(head() + [gemm()], base_inits(external("W", [4, 3, 3, 3], "ext_past_end.onnx.data", 64, 432))),
    )
    with open(os.path.join(OUT, "ext_past_end.onnx.data"), "wb") as f:
        f.write(W.tobytes()[:100])
    save(
        "ext_offset_overflow.onnx",
        model(
            head() + [gemm()],
            base_inits(external("W", [4, 3, 3, 3], "ext_offset_overflow.onnx.data", 2**64 - 1, 432)),
        ),
    )
    with open(os.path.join(OUT, "ext_offset_overflow.onnx.data"), "wb") as f:
        f.write(W.tobytes())
    save(
        "ext_missing.onnx",
        model(head() + [gemm()], base_inits(external("W", [4, 3, 3, 3], "ext_missing.onnx.data"))),
    )
    # A Constant node's tensor stored externally (only initializers may be).
    const = TensorProto()
    const.CopyFrom(external("k", [5], "ext_missing.onnx.data"))
    save(
        "const_external.onnx",
        model(
            head()
            + [
                helper.make_node("Constant", [], ["k"], name="k", value=const),
                helper.make_node("Add", ["flat", "k"], ["flat2"], name="add"),
                gemm("flat2"),
            ],
            base_inits(),
        ),
    )

    # A cycle: `a` reads `b`, which is computed from `a`.
    save(
        "cycle.onnx",
        model(
            [
                helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                helper.make_node("Add", ["c", "b"], ["a"], name="A"),
                helper.make_node("Relu", ["a"], ["b"], name="B"),
                helper.make_node("GlobalAveragePool", ["b"], ["p"], name="pool"),
                helper.make_node("Flatten", ["p"], ["flat"], name="flatten", axis=1),
                gemm(),
            ],
            base_inits(),
        ),
    )
    # A node reading a value no node, input or initializer provides.
    nodes = head()
    nodes[1] = helper.make_node("Relu", ["ghost"], ["r"], name="relu")
    save("dangling_input.onnx", model(nodes + [gemm()], base_inits()))

    # Shapes: a Reshape to a wrong element count, a zero-sized weight, weights whose
    # input channels disagree with the image's, a Gather index out of range.
    save(
        "reshape_wrong_size.onnx",
        model(
            head()
            + [
                helper.make_node("Reshape", ["flat", "shape"], ["flat5"], name="reshape"),
                gemm("flat5"),
            ],
            base_inits() + [init("shape", np.array([1, 5], dtype=np.int64))],
        ),
    )
    save(
        "zero_sized_weight.onnx",
        model(
            head() + [helper.make_node("Gemm", ["flat", "B0", "C"], ["y"], name="fc", transB=1)],
            [init("W", np.zeros((0, 3, 3, 3), np.float32)), init("B0", np.zeros((5, 0), np.float32)), init("C", C)],
        ),
    )
    save(
        "conv_channels.onnx",
        model(head() + [gemm()], base_inits(init("W", rng.standard_normal((4, 5, 3, 3)).astype(np.float32)))),
    )
    save(
        "gather_out_of_range.onnx",
        model(
            head()
            + [
                helper.make_node("Gather", ["flat", "idx"], ["g"], name="gather", axis=1),
                helper.make_node("Gemm", ["g", "B1", "C"], ["y"], name="fc", transB=1),
            ],
            base_inits() + [init("idx", np.array([0, 99], dtype=np.int64)), init("B1", B[:, :2].copy())],
        ),
    )

    # Tensors: raw bytes that do not fill the declared shape, a 2^40-element declared
    # dimension, an Expand to 2^42 elements, an input declared 2^20 pixels a side.
    short = init("W", W)
    short.raw_data = W.tobytes()[:10]
    save("raw_data_short.onnx", model(head() + [gemm()], base_inits(short)))
    huge = TensorProto()
    huge.name = "W"
    huge.data_type = TensorProto.FLOAT
    huge.dims.extend([2**40, 3, 3, 3])
    huge.raw_data = W.tobytes()[:16]
    save("huge_dimension.onnx", model(head() + [gemm()], base_inits(huge)))
    save(
        "expand_huge.onnx",
        model(
            [
                helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                helper.make_node("GlobalAveragePool", ["c"], ["p"], name="pool"),
                helper.make_node("Expand", ["p", "big"], ["e"], name="expand"),
                helper.make_node("ReduceMean", ["e"], ["m"], name="mean", axes=[2, 3], keepdims=0),
                gemm("m"),
            ],
            base_inits() + [init("big", np.array([1, 4, 2**21, 2**21], dtype=np.int64))],
        ),
    )
    save(
        "input_huge.onnx",
        model(head() + [gemm()], base_inits(), inputs=[value("x", shape=(1, 3, 2**20, 2**20))]),
    )

    # The graph's interface: no outputs, an integer image input.
    save("no_outputs.onnx", model(head() + [gemm()], base_inits(), outputs=[]))
    save(
        "integer_input.onnx",
        model(head() + [gemm()], base_inits(), inputs=[value("x", elem=TensorProto.INT64)]),
    )

    # An attribute value the interpreter does not support (Pad's `wrap`, opset 19).
    save(
        "pad_wrap.onnx",
        model(
            [helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad", mode="wrap")]
            + [helper.make_node("Conv", ["xp", "W"], ["c"], name="conv")]
            + head()[1:]
            + [gemm()],
            base_inits() + [init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))],
            opset=19,
        ),
    )

    # Not a model: a valid one cut in half.
    data = model(head() + [gemm()], base_inits()).SerializeToString()
    with open(os.path.join(OUT, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])

    # Sanity: the unbroken model is a valid ONNX graph.
    onnx.checker.check_model(model(head() + [gemm()], base_inits()))


def framed(model_path, data_path):
    """The fuzz target's input: the model (its external data renamed to the file the target
    writes) and the data file's bytes."""
    m = onnx.load(model_path, load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "model.onnx.data"
    model = m.SerializeToString()
    with open(data_path, "rb") as f:
        data = f.read()
    return struct.pack("<I", len(model)) + model + data


def fuzz_seeds():
    families = os.path.join(HERE, "onnx")
    seeds = {}
    for name in ["gray_dynamo", "googlenet_dynamo", "convnext_tiny_dynamo", "vit_b_16_dynamo"]:
        path = os.path.join(families, name + ".onnx")
        seeds[f"family-{name}.framed"] = framed(path, path + ".data")
    for name in ["gray_legacy", "convnext_tiny_legacy", "vit_b_16_legacy"]:
        with open(os.path.join(families, name + ".onnx"), "rb") as f:
            seeds[f"family-{name}.onnx"] = f.read()
    for name in sorted(os.listdir(OUT)):
        path = os.path.join(OUT, name)
        if not name.endswith(".onnx"):
            continue
        if os.path.exists(path + ".data"):
            seeds[f"hostile-{name[:-5]}.framed"] = framed(path, path + ".data")
        else:
            with open(path, "rb") as f:
                data = f.read()
            # A plain model must not read as framed: its first four bytes, as a length,
            # must not fit in the file.
            assert len(data) < 4 or struct.unpack("<I", data[:4])[0] > len(data) - 4, name
            seeds[f"hostile-{name}"] = data
    os.makedirs(SEEDS, exist_ok=True)
    for name in os.listdir(SEEDS):
        if name.startswith(("family-", "hostile-")):
            os.remove(os.path.join(SEEDS, name))
    for name, data in seeds.items():
        with open(os.path.join(SEEDS, name), "wb") as f:
            f.write(data)
    assert sum(len(d) for d in seeds.values()) < 1_000_000


if __name__ == "__main__":
    main()
    fuzz_seeds()
