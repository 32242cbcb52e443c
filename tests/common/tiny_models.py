"""Builders of tiny model files in the official formats, for tests that run real loading code.

Importing this module has no side effects; every builder writes only where it is told.

MDX-Net (audio-separator / UVR): an ONNX graph with an input named ``input`` of shape
``[B, 4, dim_f, dim_t]`` (real/imag of the left and right STFT, ``dim_f`` lowest bins) and an
output of the same shape. audio-separator finds the model's STFT parameters by the MD5 of the
file (of its last 10,240,000 bytes when larger) in ``mdx_model_data.json``, and refuses a file
name that ``download_checks.json`` does not list; :func:`install_tiny_mdx` writes all three.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from svc_core.content.whisper import sinusoids

# audio-separator's Separator.get_model_hash: MD5 of the whole file below this size, else of the
# last this-many bytes.
_MD5_TAIL_BYTES = 10000 * 1024

DOWNLOAD_CHECK_KEYS = (
    "vr_download_list",
    "mdx_download_list",
    "mdx_download_vip_list",
    "demucs_download_list",
    "mdx23c_download_list",
    "mdx23c_download_vip_list",
    "roformer_download_list",
)


def separator_model_md5(path: Path) -> str:
    """The hash audio-separator identifies a model file by."""
    data = Path(path).read_bytes()
    return hashlib.md5(
        data[-_MD5_TAIL_BYTES:] if len(data) >= _MD5_TAIL_BYTES else data
    ).hexdigest()


def build_mask_mdx_onnx(
    path: Path, *, dim_f: int = 256, dim_t: int = 256, cutoff_bin: int = 32, gain: float = 1.0
) -> Path:
    """An MDX-Net-format ONNX that keeps STFT bins ``< cutoff_bin`` (times ``gain``).

    With ``mdx_n_fft_scale_set=2048`` at 44.1 kHz, ``cutoff_bin=32`` passes ~690 Hz and below:
    a low tone lands in the primary stem, a high tone in the secondary one.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    mask = np.zeros((1, 1, dim_f, 1), np.float32)
    mask[:, :, :cutoff_bin, :] = gain
    shape = ["batch", 4, dim_f, dim_t]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "mask"], ["output"])],
        "tiny_mdx_mask",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(mask, "mask")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by older onnxruntime builds too
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _load_json(path: Path, default):
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return default


def register_mdx_model(
    models_dir: Path,
    filename: str,
    *,
    dim_f: int = 256,
    dim_t_set: int = 8,
    n_fft: int = 2048,
    compensate: float = 1.0,
    primary_stem: str = "Vocals",
    **extra,
) -> str:
    """List ``filename`` in ``download_checks.json`` and its MD5 in ``mdx_model_data.json``.

    Also writes an empty ``vr_model_data.json`` if none exists (audio-separator opens both model
    data files for any hash-identified model). Merges with what is already there. Returns the MD5.
    """
    models_dir = Path(models_dir)
    md5 = separator_model_md5(models_dir / filename)
    checks_path = models_dir / "download_checks.json"
    checks = _load_json(checks_path, {})
    for key in DOWNLOAD_CHECK_KEYS:
        checks.setdefault(key, {})
    checks["mdx_download_list"][f"MDX-Net Model: {filename}"] = filename
    checks_path.write_text(json.dumps(checks, indent=1), encoding="utf-8")

    mdx_path = models_dir / "mdx_model_data.json"
    mdx = _load_json(mdx_path, {})
    mdx[md5] = {
        "compensate": compensate,
        "mdx_dim_f_set": dim_f,
        "mdx_dim_t_set": dim_t_set,
        "mdx_n_fft_scale_set": n_fft,
        "primary_stem": primary_stem,
        **extra,
    }
    mdx_path.write_text(json.dumps(mdx, indent=1), encoding="utf-8")
    vr_path = models_dir / "vr_model_data.json"
    if not vr_path.is_file():
        vr_path.write_text("{}", encoding="utf-8")
    return md5


def install_tiny_mdx(
    models_dir: Path,
    filename: str = "tiny_vocals.onnx",
    *,
    cutoff_bin: int = 32,
    gain: float = 1.0,
    compensate: float = 1.0,
    primary_stem: str = "Vocals",
) -> Path:
    """Build a mask MDX model in ``models_dir`` and register it; returns the model path."""
    path = build_mask_mdx_onnx(Path(models_dir) / filename, cutoff_bin=cutoff_bin, gain=gain)
    register_mdx_model(models_dir, filename, compensate=compensate, primary_stem=primary_stem)
    return path


def build_sized_mdx_onnx(
    path: Path,
    *,
    dim_f: int = 3072,
    dim_t: int = 256,
    width: int = 48,
    depth: int = 5,
    seed: int = 0,
) -> Path:
    """A random-weight MDX-Net-shaped U-Net ([B, 4, dim_f, dim_t] -> same) for speed benches.

    Convolution widths double per level like the TFC-TDF U-Nets of UVR's MDX-Net models; with
    the defaults the exported file is tens of MB, the order of UVR-MDX-NET-Voc_FT.onnx.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            )

        def forward(self, x):
            return self.net(x)

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            chans = [width * (2**i) for i in range(depth)]
            self.inp = nn.Conv2d(4, chans[0], 1)
            self.down = nn.ModuleList(Block(c, c) for c in chans)
            self.pool = nn.ModuleList(
                nn.Conv2d(c, n, 2, stride=2) for c, n in zip(chans, chans[1:], strict=False)
            )
            self.up = nn.ModuleList(
                nn.ConvTranspose2d(n, c, 2, stride=2)
                for c, n in zip(chans, chans[1:], strict=False)
            )
            self.dec = nn.ModuleList(Block(2 * c, c) for c in chans[:-1])
            self.out = nn.Conv2d(chans[0], 4, 1)

        def forward(self, x):
            h = self.inp(x)
            skips = []
            for i, blk in enumerate(self.down):
                h = blk(h)
                if i < len(self.pool):
                    skips.append(h)
                    h = self.pool[i](h)
            for i in reversed(range(len(self.up))):
                h = self.up[i](h)
                h = self.dec[i](torch.cat([h, skips[i]], dim=1))
            return self.out(h) * 1e-3 + x

    model = UNet().eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 4, dim_f, dim_t)
    torch.onnx.export(
        model,
        dummy,
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


# --- content encoders: openai-whisper and bshall/hubert checkpoint layouts -------------------


def whisper_dims(n_mels=80, ctx=1500, state=8, heads=2, layers=1) -> dict:
    return {
        "n_mels": n_mels,
        "n_vocab": 51865,
        "n_audio_ctx": ctx,
        "n_audio_state": state,
        "n_audio_head": heads,
        "n_audio_layer": layers,
        "n_text_ctx": 448,
        "n_text_state": state,
        "n_text_head": heads,
        "n_text_layer": layers,
    }


def whisper_state(dims: dict, seed: int = 0, dtype=torch.float16) -> dict[str, torch.Tensor]:
    """openai-whisper's model_state_dict names and shapes (encoder + a few decoder keys).

    Official checkpoints store fp16 tensors; the loader must accept them.
    """
    g = torch.Generator().manual_seed(seed)
    c, m = dims["n_audio_state"], dims["n_mels"]

    def r(*shape, scale=0.3):
        return (torch.randn(*shape, generator=g) * scale).to(dtype)

    s = {
        "encoder.conv1.weight": r(c, m, 3),
        "encoder.conv1.bias": r(c),
        "encoder.conv2.weight": r(c, c, 3),
        "encoder.conv2.bias": r(c),
        "encoder.positional_embedding": sinusoids(dims["n_audio_ctx"], c).to(dtype),
        "encoder.ln_post.weight": 1 + r(c, scale=0.1),
        "encoder.ln_post.bias": r(c),
    }
    for i in range(dims["n_audio_layer"]):
        p = f"encoder.blocks.{i}."
        for name in ("query", "value", "out"):
            s[p + f"attn.{name}.weight"] = r(c, c)
            s[p + f"attn.{name}.bias"] = r(c)
        s[p + "attn.key.weight"] = r(c, c)  # whisper's key projection has no bias
        for ln in ("attn_ln", "mlp_ln"):
            s[p + f"{ln}.weight"] = 1 + r(c, scale=0.1)
            s[p + f"{ln}.bias"] = r(c)
        s[p + "mlp.0.weight"] = r(4 * c, c)
        s[p + "mlp.0.bias"] = r(4 * c)
        s[p + "mlp.2.weight"] = r(c, 4 * c)
        s[p + "mlp.2.bias"] = r(c)
    # The decoder is present in real files and must be ignored.
    s["decoder.token_embedding.weight"] = r(32, dims["n_text_state"])
    s["decoder.positional_embedding"] = r(16, dims["n_text_state"])
    s["decoder.ln.weight"] = r(dims["n_text_state"])
    return s


HUBERT_TINY = {
    "conv_dim": 8,
    "hidden": 16,
    "ffn": 32,
    "layers": 2,
    "kernel": 16,
    "groups": 4,
    "out": 256,
    "labels": 100,
}


def hubert_state(conv_dim, hidden, ffn, layers, kernel, groups, out, labels, seed=0) -> dict:
    """bshall/hubert's HubertSoft state dict names and shapes, with DDP's ``module.`` prefix."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.3):
        return torch.randn(*shape, generator=g) * scale

    s = {"feature_extractor.conv0.weight": r(conv_dim, 1, 10)}
    for i, k in zip(range(1, 7), (3, 3, 3, 3, 2, 2), strict=True):
        s[f"feature_extractor.conv{i}.weight"] = r(conv_dim, conv_dim, k, scale=0.5)
    s["feature_extractor.norm0.weight"] = 1 + r(conv_dim, scale=0.1)
    s["feature_extractor.norm0.bias"] = r(conv_dim)
    s["feature_projection.norm.weight"] = 1 + r(conv_dim, scale=0.1)
    s["feature_projection.norm.bias"] = r(conv_dim)
    s["feature_projection.projection.weight"] = r(hidden, conv_dim)
    s["feature_projection.projection.bias"] = r(hidden)
    s["positional_embedding.conv.bias"] = r(hidden)
    s["positional_embedding.conv.weight_g"] = r(1, 1, kernel).abs() + 0.5
    s["positional_embedding.conv.weight_v"] = r(hidden, hidden // groups, kernel)
    s["norm.weight"] = 1 + r(hidden, scale=0.1)
    s["norm.bias"] = r(hidden)
    for i in range(layers):
        p = f"encoder.layers.{i}."
        s[p + "self_attn.in_proj_weight"] = r(3 * hidden, hidden)
        s[p + "self_attn.in_proj_bias"] = r(3 * hidden)
        s[p + "self_attn.out_proj.weight"] = r(hidden, hidden)
        s[p + "self_attn.out_proj.bias"] = r(hidden)
        s[p + "linear1.weight"] = r(ffn, hidden)
        s[p + "linear1.bias"] = r(ffn)
        s[p + "linear2.weight"] = r(hidden, ffn)
        s[p + "linear2.bias"] = r(hidden)
        for n in ("norm1", "norm2"):
            s[p + f"{n}.weight"] = 1 + r(hidden, scale=0.1)
            s[p + f"{n}.bias"] = r(hidden)
    s["proj.weight"] = r(out, hidden)
    s["proj.bias"] = r(out)
    s["masked_spec_embed"] = r(hidden)
    s["label_embedding.weight"] = r(labels, out)
    return {f"module.{k}": v for k, v in s.items()}
