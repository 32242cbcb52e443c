"""Our model against so-vits-svc 5.0's own computation (tests/data/sovits5, golden cases).

Every module is compared with the intermediate arrays 5.0's code produced from the same
weights (rebuilt from each case's recipe) and inputs; then each of 5.0's file layouts is
loaded through the public loader and synthesised end to end.

Tolerance, stated once: ``|ours - 5.0| <= ATOL + RTOL * max|5.0|`` per array; the waveform
and the speaker vectors are held to 1e-4 absolute (the compat check's bar). 5.0's own code
re-run with other thread counts stays within 7e-7 of these numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from svc_core.errors import IncompatibleError
from svc_core.model import builders
from svc_core.model.commons import f0_to_coarse
from svc_core.model.config import load_config
from svc_core.model.inference import load_voice_model
from svc_core.model.losses import kl_loss
from svc_core.model.sovits5 import (
    config_from_hparams,
    from_legacy,
    hparams_to_dict,
    load_hparams_yaml,
    to_legacy,
)
from tests.common import sovits5_golden as G

ATOL, RTOL = 1e-5, 1e-5
WAVE_ATOL = 1e-4


def close(name: str, got, want: np.ndarray) -> None:
    got = got.detach().cpu().numpy() if torch.is_tensor(got) else np.asarray(got)
    got, want = got.reshape(-1).astype(np.float64), np.asarray(want).reshape(-1)
    assert got.shape == want.shape, name
    tol = ATOL + RTOL * float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    assert err <= tol, f"{name}: max |diff| {err:.2e} > {tol:.2e}"


class Case:
    def __init__(self, name: str):
        self.name = name
        self.config = config_from_hparams(load_hparams_yaml(G.hparams_path(name)))
        self.gen = builders.build_generator(self.config).eval()
        self.gen.load_state_dict(from_legacy(G.state_dict(name, "model_g")), strict=True)
        self.disc = builders.build_discriminator(self.config).eval()
        self.disc.load_state_dict(from_legacy(G.state_dict(name, "model_d")), strict=True)
        i = G.inputs(name)
        self.golden = G.golden(name)
        self.t = i["f0"].shape[0]
        # 5.0 repeats its 50 frames/s content features twice (100 model frames/s)
        self.ppg = torch.from_numpy(np.repeat(i["ppg"], 2, 0))[None]
        self.vec = torch.from_numpy(np.repeat(i["vec"], 2, 0))[None]
        self.f0 = torch.from_numpy(i["f0"]).float()[None]
        self.spk = torch.from_numpy(i["spk"]).float()[None]
        self.excitation = torch.from_numpy(i["excitation"])[None]
        self.audio = torch.from_numpy(i["audio"])[None]
        self.inputs = i
        self.mask = torch.ones(1, 1, self.t)


@pytest.fixture(scope="module", params=G.CASES)
def case(request):
    torch.set_num_threads(1)
    return Case(request.param)


def test_config_from_5_0_hparams_has_5_0_sizes(case):
    c = case.config
    if case.name == "base":
        base = load_config("base")
        assert c.audio == base.audio and c.model == base.model
        assert (c.train.learning_rate, c.train.accum_step) == (5e-5, 2)
    # our config written back as 5.0 hparams reads back the same
    assert config_from_hparams(hparams_to_dict(c)).model == c.model


@torch.no_grad()
def test_prior_encoder(case):
    coarse = f0_to_coarse(case.f0)
    np.testing.assert_array_equal(coarse[0].numpy(), case.golden["coarse"])
    z, m, logs, hidden = case.gen.enc_p(case.ppg, case.vec, coarse, case.mask, noise_scale=0)
    close("prior_x", hidden, case.golden["prior_x"])
    close("prior_m", m, case.golden["prior_m"])
    close("prior_logs", logs, case.golden["prior_logs"])
    close("z (zero noise) = m", z, case.golden["prior_m"])


@torch.no_grad()
def test_flow_both_ways_with_log_determinant(case):
    g = case.golden
    m_p = torch.from_numpy(g["prior_m"])[None]
    z_r, logdet_r = case.gen.flow(m_p, case.mask, case.spk, reverse=True)
    close("flow_rev_z", z_r, g["flow_rev_z"])
    close("flow_rev_logdet", logdet_r, g["flow_rev_logdet"])
    m_q = torch.from_numpy(g["post_m"])[None]
    z_f, logdet_f = case.gen.flow(m_q, case.mask, case.spk)
    close("flow_fwd_z", z_f, g["flow_fwd_z"])
    close("flow_fwd_logdet", logdet_f, g["flow_fwd_logdet"])
    logs_p, logs_q = (torch.from_numpy(g[k])[None] for k in ("prior_logs", "post_logs"))
    close("kl_f", kl_loss(z_f, logs_q, m_p, logs_p, logdet_f, case.mask), g["kl_f"])
    close("kl_r", kl_loss(z_r, logs_p, m_q, logs_q, logdet_r, case.mask), g["kl_r"])


@torch.no_grad()
def test_decoder_adapter_pre_and_source_driven_waveform(case):
    g = case.golden
    z = torch.from_numpy(g["flow_rev_z"])[None]
    a = case.gen.dec.adapter(z, case.spk)
    close("dec_adapter", a, g["dec_adapter"])
    x = case.gen.dec.conv_pre(a)
    close("dec_pre", x * torch.tanh(F.softplus(x)), g["dec_pre"])
    wave = case.gen.dec.decode(z, case.spk, case.excitation.unsqueeze(1))
    assert float((wave[0, 0] - torch.from_numpy(g["wave"])).abs().max()) <= WAVE_ATOL


@torch.no_grad()
def test_posterior_encoder_on_5_0s_spectrogram(case):
    g = case.golden
    spec = builders.build_linear_spectrogram(case.config)(case.audio)
    close("spec", spec, g["spec"])
    emb = case.gen.emb_g(F.normalize(case.spk))
    close("emb_g", emb, g["emb_g"])
    _, m, logs = case.gen.enc_q(spec, case.mask, emb.unsqueeze(-1), noise_scale=0)
    close("post_m", m, g["post_m"])
    close("post_logs", logs, g["post_logs"])


@torch.no_grad()
def test_speaker_classifier(case):
    hidden = torch.from_numpy(case.golden["prior_x"])[None]
    close("spk_preds", case.gen.speaker_classifier(hidden), case.golden["spk_preds"])


@torch.no_grad()
def test_discriminators_scores_and_feature_maps(case):
    g, m = case.golden, case.config.model
    names = [f"mrd{i}" for i in range(len(m.mrd_resolutions))]
    names += [f"mpd{i}" for i in range(len(m.mpd_periods))] + ["msd0"]
    out = case.disc(torch.from_numpy(g["disc_input"])[None, None])
    assert len(out) == len(names)
    for name, (fmaps, score) in zip(names, out, strict=True):
        close(f"disc_{name}_score", score, g[f"disc_{name}_score"])
        stats = [[f.mean().item(), f.std().item(), f.abs().max().item()] for f in fmaps]
        close(f"disc_{name}_fmap_stats", np.array(stats), g[f"disc_{name}_fmap_stats"])


def test_every_5_0_layout_loads_and_synthesises_5_0s_waveform(case, tmp_path):
    files = G.write_layouts(case.name, tmp_path)
    hp = None if case.name == "base" else G.hparams_path(case.name)
    trials = [("checkpoint", None), ("pretrain", hp), ("export", hp)]
    for layout, hparams in trials:
        vm = load_voice_model(files[layout], hparams=hparams)
        assert vm.info["format"] == "sovits5" and vm.info["layout"] == layout
        i = case.inputs
        wave = vm.synthesize(
            i["ppg"], i["vec"], i["f0"], i["spk"],
            content_rate=50.0, noise_scale=0.0, excitation=i["excitation"],
        )  # fmt: skip
        err = float(np.abs(wave - case.golden["wave"]).max())
        assert err <= WAVE_ATOL, f"{layout}: {err:.2e}"


def test_a_tiny_export_read_with_base_sizes_is_refused_naming_the_difference(tmp_path):
    files = G.write_layouts("tiny", tmp_path)
    with pytest.raises(IncompatibleError, match="differ in shape.*vs"):
        load_voice_model(files["export"])


def test_legacy_weight_norm_keys_round_trip():
    sd = G.state_dict("tiny", "model_g")
    assert any(k.endswith("weight_g") for k in sd)
    assert to_legacy(from_legacy(sd)).keys() == sd.keys()
    assert not any(k.endswith(("weight_g", "weight_v")) for k in from_legacy(sd))


# -- a singer's existing 5.0 voice ----------------------------------------------------------


def test_import_a_5_0_voice_as_a_package_that_synthesises_5_0s_waveform(tmp_path):
    from svc_core.model.package import load_voice_package
    from svc_core.train.package import import_sovits5_voice

    files = G.write_layouts("tiny", tmp_path)
    i, g = G.inputs("tiny"), G.golden("tiny")
    spk = tmp_path / "speaker0.spk.npy"
    np.save(spk, i["spk"])
    out = import_sovits5_voice(
        files["export"], spk, tmp_path / "v.zip", hparams=G.hparams_path("tiny")
    )
    pkg = load_voice_package(out)
    features = pkg.meta["features"]
    assert features == {
        "config": "base",
        "f0_method": "crepe-full",
        "ppg_model": "whisper-large-v2",
        "vec_model": "hubert-soft",
        "speaker_encoder": "sovits5",
    }
    assert "imported so-vits-svc 5.0 export" in pkg.info["starts_from"]
    np.testing.assert_array_equal(pkg.speaker, i["spk"])
    vm = load_voice_model(out)
    wave = vm.synthesize(
        i["ppg"], i["vec"], i["f0"], None, noise_scale=0.0, excitation=i["excitation"]
    )  # the package's own speaker vector
    assert float(np.abs(wave - g["wave"]).max()) <= WAVE_ATOL
    # a checkpoint carries its hp_str: no hparams needed
    import_sovits5_voice(files["checkpoint"], spk, tmp_path / "c.zip")


def test_import_refuses_mismatching_or_damaged_files_plainly(tmp_path):
    from svc_core.errors import BadInputError
    from svc_core.train.package import import_sovits5_voice

    files = G.write_layouts("tiny", tmp_path)
    spk = tmp_path / "s.spk.npy"
    np.save(spk, G.inputs("tiny")["spk"])
    with pytest.raises(IncompatibleError, match="base.yaml.*differ in shape"):
        import_sovits5_voice(files["export"], spk, tmp_path / "x.zip")  # no hparams
    bad_spk = tmp_path / "bad.spk.npy"
    np.save(bad_spk, np.zeros(12, np.float32))
    with pytest.raises(IncompatibleError, match="shape"):
        import_sovits5_voice(files["checkpoint"], bad_spk, tmp_path / "x.zip")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model")
    with pytest.raises(IncompatibleError, match="not a readable model file"):
        import_sovits5_voice(junk, spk, tmp_path / "x.zip")
    not5 = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, not5)
    with pytest.raises(BadInputError, match="not a so-vits-svc 5.0 model"):
        import_sovits5_voice(not5, spk, tmp_path / "x.zip")
    hp = tmp_path / "bad.yaml"
    hp.write_text("data: [1, 2\n")
    with pytest.raises(BadInputError, match="not valid YAML"):
        import_sovits5_voice(files["export"], spk, tmp_path / "x.zip", hparams=hp)
    assert not (tmp_path / "x.zip").exists()  # nothing half-written


def test_cli_import_sovits5(tmp_path):
    from click.testing import CliRunner

    from svc_core.cli import engine as cli

    files = G.write_layouts("tiny", tmp_path)
    spk = tmp_path / "speaker0.spk.npy"
    np.save(spk, G.inputs("tiny")["spk"])
    out = tmp_path / "voice.zip"
    args = ["package", "import-sovits5", str(files["export"]), str(spk), str(out)]
    r = CliRunner().invoke(cli, [*args, "--hparams", str(G.hparams_path("tiny"))])
    assert r.exit_code == 0, r.output
    assert out.is_file()
    r = CliRunner().invoke(cli, args)  # base sizes: refused in plain words
    assert r.exit_code != 0 and "does not fit" in r.output
