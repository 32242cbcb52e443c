"""RMVPE (Wei et al., 2023): a U-Net + BiGRU F0 estimator robust to accompaniment and reverb.

Loads the official checkpoint ``rmvpe.pt`` (as distributed with RVC: a plain ``state_dict``
of the ``E2E`` network; asset name ``rmvpe``). The network is rebuilt here with the same
parameter names; its sizes (channels, blocks, layers, GRU width) are read from the
checkpoint's tensor shapes, so the official file (16 channels, 4 blocks, 5 encoder levels,
4 intermediate layers, one 256-unit BiGRU) and small test checkpoints of the same format go
through the same loader.

Front end: 16 kHz, log-mel with 128 bands (30-8000 Hz, HTK mel, Slaney-normalised filters),
1024-point Hann STFT magnitude every 160 samples (10 ms). Output: 360 salience bins, 20 cents
apart from 1997.38 cents above 10 Hz (≈ 31.7 Hz); F0 = local weighted average of the 9 bins
around the peak; unvoiced where the peak salience is at or below the threshold (0.03).

Octave guard: on high notes (from ~800 Hz) RMVPE is known to report the octave below (its
training sets have few such notes). Such a frame's spectrum has no energy at the reported
F0's odd multiples — a note at 2f has partials at 2f, 4f, … only — so
:func:`octave_guard` doubles the estimate where the odd multiples are more than 20 dB below
the even ones, using the STFT the front end computed anyway. A true note at f keeps its
fundamental and third partial and is left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from svc_core.audio.dsp import resample
from svc_core.errors import AssetMissingError, IncompatibleError
from svc_core.f0.base import F0Extractor, F0Params
from svc_core.utils import resolve_device

RMVPE_SR = 16000
RMVPE_HOP = 160
N_MELS = 128
N_BINS = 360
DEFAULT_THRESHOLD = 0.03
CENTS_OFFSET = 1997.3794084376191  # cents above 10 Hz of bin 0
MAX_F0 = 10.0 * 2.0 ** ((CENTS_OFFSET + 20.0 * (N_BINS - 1)) / 1200.0)  # top bin, ≈ 2006 Hz
N_FFT = 1024
# Octave guard: reported F0 from which an octave-down error is looked for (the true note
# would be from 2 x this), and how far (amplitude ratio) the odd multiples of the reported
# F0 must lie below the even ones for the note to be taken an octave up
OCTAVE_GUARD_MIN_HZ = 400.0
OCTAVE_GUARD_RATIO = 0.1
PULL_HINT = "svc-studio assets pull rmvpe"
# Frames per forward pass, and context frames on each side that are computed and dropped:
# bounds memory on long songs while the GRU still sees the surrounding phrase.
_CHUNK_FRAMES = 4096
_CONTEXT_FRAMES = 128


def _build_network(
    en_out: int, n_blocks: int, levels: int, inter_layers: int, n_gru: int, gru_hidden: int
):
    """The E2E network with the official parameter names. Input ``[B, 1, N, 128]`` log-mel
    (frames × bands), output ``[B, N, 360]`` salience."""
    import torch
    from torch import nn

    class ConvBlockRes(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout, momentum=0.01),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout, momentum=0.01),
                nn.ReLU(),
            )
            self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

        def forward(self, x):
            return self.conv(x) + (x if self.shortcut is None else self.shortcut(x))

    class ResBlocks(nn.Module):
        """``n`` residual conv blocks; optionally also returns a 2x2 average-pooled copy."""

        def __init__(self, cin: int, cout: int, n: int, pool: bool) -> None:
            super().__init__()
            self.conv = nn.ModuleList(
                [ConvBlockRes(cin if i == 0 else cout, cout) for i in range(n)]
            )
            self.pool = nn.AvgPool2d(2) if pool else None

        def forward(self, x):
            for block in self.conv:
                x = block(x)
            return x if self.pool is None else (x, self.pool(x))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm2d(1, momentum=0.01)
            chans = [1] + [en_out * 2**i for i in range(levels)]
            self.layers = nn.ModuleList(
                [ResBlocks(chans[i], chans[i + 1], n_blocks, True) for i in range(levels)]
            )

        def forward(self, x):
            skips = []
            x = self.bn(x)
            for layer in self.layers:
                skip, x = layer(x)
                skips.append(skip)
            return x, skips

    class DecoderBlock(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv1 = nn.Sequential(
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=False),
                nn.BatchNorm2d(cout, momentum=0.01),
                nn.ReLU(),
            )
            self.conv2 = nn.ModuleList(
                [ConvBlockRes(cout * 2 if i == 0 else cout, cout) for i in range(n_blocks)]
            )

        def forward(self, x, skip):
            x = torch.cat((self.conv1(x), skip), dim=1)
            for block in self.conv2:
                x = block(x)
            return x

    class Intermediate(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.layers = nn.ModuleList(
                [
                    ResBlocks(cin if i == 0 else cout, cout, n_blocks, False)
                    for i in range(inter_layers)
                ]
            )

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    class Decoder(nn.Module):
        def __init__(self, cin: int) -> None:
            super().__init__()
            self.layers = nn.ModuleList(
                [DecoderBlock(cin // 2**i, cin // 2 ** (i + 1)) for i in range(levels)]
            )

        def forward(self, x, skips):
            for i, layer in enumerate(self.layers):
                x = layer(x, skips[-1 - i])
            return x

    class DeepUnet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            top = en_out * 2**levels
            self.encoder = Encoder()
            self.intermediate = Intermediate(top // 2, top)
            self.decoder = Decoder(top)

        def forward(self, x):
            x, skips = self.encoder(x)
            return self.decoder(self.intermediate(x), skips)

    class BiGRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(
                3 * N_MELS, gru_hidden, num_layers=n_gru, batch_first=True, bidirectional=True
            )

        def forward(self, x):
            return self.gru(x)[0]

    class E2E(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = DeepUnet()
            self.cnn = nn.Conv2d(en_out, 3, 3, padding=1)
            self.fc = nn.Sequential(
                BiGRU(), nn.Linear(2 * gru_hidden, N_BINS), nn.Dropout(0.25), nn.Sigmoid()
            )

        def forward(self, x):
            x = self.cnn(self.unet(x))  # [B, 3, N, 128]
            return self.fc(x.transpose(1, 2).flatten(-2))  # [B, N, 360]

    return E2E()


def _count(keys: list[str], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := rx.match(k))})


def load_rmvpe(path: str | Path, device: str = "cpu"):
    """Load an RMVPE checkpoint (official ``rmvpe.pt`` format) into an eval-mode network.

    Raises:
        AssetMissingError: the file does not exist.
        IncompatibleError: the file is not an RMVPE state dict.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise AssetMissingError(
            f"the RMVPE F0 model is not installed ({path.name} not found); run `{PULL_HINT}`"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not this format"
        raise IncompatibleError(f"'{path.name}' is not an RMVPE checkpoint ({exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise IncompatibleError(f"'{path.name}' is not an RMVPE checkpoint (no state dict)")
    keys = list(state)
    try:
        en_out = int(state["unet.encoder.layers.0.conv.0.conv.0.weight"].shape[0])
        gru_hidden = int(state["fc.0.gru.weight_hh_l0"].shape[1])
    except (KeyError, AttributeError, IndexError) as exc:
        raise IncompatibleError(
            f"'{path.name}' is not an RMVPE checkpoint (missing {exc})"
        ) from exc
    levels = _count(keys, r"unet\.encoder\.layers\.(\d+)\.")
    n_blocks = _count(keys, r"unet\.encoder\.layers\.0\.conv\.(\d+)\.")
    inter = _count(keys, r"unet\.intermediate\.layers\.(\d+)\.")
    n_gru = _count(keys, r"fc\.0\.gru\.weight_ih_l(\d+)$")
    if not (levels and n_blocks and inter and n_gru) or N_MELS % 2**levels:
        raise IncompatibleError(f"'{path.name}' has an RMVPE layout this version cannot build")
    net = _build_network(en_out, n_blocks, levels, inter, n_gru, gru_hidden)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise IncompatibleError(f"'{path.name}' does not match the RMVPE network: {exc}") from exc
    net.levels = levels  # the frame count must be a multiple of 2**levels
    return net.to(torch.device(device)).eval()


def salience_to_f0(salience: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """``[N, 360]`` salience → ``[N]`` F0 in Hz (0 where the peak is ≤ ``threshold``).

    The estimate is the salience-weighted mean of the 9 bins centred on the peak.
    """
    sal = np.asarray(salience, dtype=np.float64)
    n = sal.shape[0]
    peak = sal.argmax(axis=1)
    padded = np.pad(sal, ((0, 0), (4, 4)))
    cents = np.pad(20.0 * np.arange(N_BINS) + CENTS_OFFSET, (4, 4))
    idx = peak[:, None] + np.arange(9)[None, :]  # window in padded coordinates
    w = padded[np.arange(n)[:, None], idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (w * cents[idx]).sum(axis=1) / w.sum(axis=1)
    f0 = 10.0 * 2.0 ** (c / 1200.0)
    f0[(sal.max(axis=1) <= threshold) | ~np.isfinite(f0)] = 0.0
    return f0


def _harmonic_peaks(mag: np.ndarray, bin_hz: float, freqs: np.ndarray) -> np.ndarray:
    """Largest magnitude within ±3 % (at least ±1.5 bins) of ``freqs [N]`` in each frame of
    ``mag [F, N]``; NaN where the band passes the top of the spectrum."""
    n_bins, n = mag.shape
    half = np.maximum(0.03 * freqs / bin_hz, 1.5)
    lo = np.floor(freqs / bin_hz - half).astype(np.int64)
    hi = np.ceil(freqs / bin_hz + half).astype(np.int64)
    width = int((hi - lo).max(initial=0)) + 1
    idx = lo[:, None] + np.arange(width)[None, :]  # [N, W]
    inside = (idx <= hi[:, None]) & (idx >= 0) & (idx < n_bins)
    vals = mag[np.clip(idx, 0, n_bins - 1), np.arange(n)[:, None]]
    peak = np.where(inside, vals, 0.0).max(axis=1)
    return np.where(hi < n_bins, peak, np.nan)


def octave_guard(
    mag: np.ndarray,
    bin_hz: float,
    f0: np.ndarray,
    *,
    min_hz: float = OCTAVE_GUARD_MIN_HZ,
    max_hz: float = MAX_F0,
    ratio: float = OCTAVE_GUARD_RATIO,
) -> np.ndarray:
    """Undo octave-down errors on high notes: ``f0 [N]`` with the frames doubled whose
    spectrum (``mag [F, N]``, magnitude, bins ``bin_hz`` apart, frame-aligned with ``f0``)
    shows a note at twice the estimate.

    A voiced frame with ``min_hz <= f0`` and ``2 f0 <= max_hz`` is checked: the peaks at the
    estimate's odd multiples (1 and 3) against those at its even ones (2 and 4). Where the
    odd ones are below ``ratio`` times the even ones, and the even ones stand clear of the
    frame's median level (not breath noise), the true note is ``2 f0``. Single flagged or
    unflagged frames inside a run are outvoted by their neighbours (a 5-frame majority), so
    a note is not split between octaves.
    """
    f = np.asarray(f0, dtype=np.float64)
    out = f.copy()
    mag = np.asarray(mag, dtype=np.float64)
    n = min(len(f), mag.shape[1])
    if n == 0:
        return out
    f, mag = f[:n], mag[:, :n]
    check = (f >= min_hz) & (2.0 * f <= max_hz)
    if not check.any():
        return out
    safe = np.where(check, f, min_hz)
    peaks = np.stack([_harmonic_peaks(mag, bin_hz, k * safe) for k in (1, 2, 3, 4)])
    odd = np.fmax(peaks[0], peaks[2])  # NaN only where both lie past the top
    even = np.fmax(peaks[1], peaks[3])
    floor = np.median(mag, axis=0)
    with np.errstate(invalid="ignore"):
        flag = check & (odd < ratio * even) & (even > 4.0 * floor)
    # majority of the checked frames among each frame and its two neighbours each side
    votes = np.convolve(flag.astype(float), np.ones(5), mode="same")
    counted = np.convolve(check.astype(float), np.ones(5), mode="same")
    flag = check & (votes * 2 > counted)
    out[:n][flag] *= 2.0
    return out


class Rmvpe(F0Extractor):
    """RMVPE; needs ``F0Params.weights_path`` (the ``rmvpe`` asset)."""

    name = "rmvpe"

    def _model(self, path: str, device: str):
        key = (str(Path(path).resolve()), device)
        return self._cached(key, lambda: load_rmvpe(path, device))

    def _log_mel(self, x, device: str):
        """``[T]`` float tensor at 16 kHz → ``([N, 128]`` log-mel, ``[513, N]`` STFT
        magnitude), ``N = 1 + T // 160``."""
        import librosa
        import torch

        def mel_and_window():
            fb = librosa.filters.mel(
                sr=RMVPE_SR, n_fft=N_FFT, n_mels=N_MELS, fmin=30, fmax=8000, htk=True
            )
            return torch.from_numpy(fb).float().to(device), torch.hann_window(N_FFT).to(device)

        fb, window = self._cached(("mel", device), mel_and_window)
        spec = torch.stft(
            x, N_FFT, RMVPE_HOP, N_FFT, window, center=True, pad_mode="reflect", return_complex=True
        ).abs()
        return torch.log(torch.clamp(fb @ spec, min=1e-5)).T, spec

    def compute(
        self, audio: np.ndarray, sr: int, params: F0Params
    ) -> tuple[np.ndarray, float, float]:
        import torch
        import torch.nn.functional as F

        if not params.weights_path:
            raise AssetMissingError(f"the RMVPE F0 model is not installed; run `{PULL_HINT}`")
        device = resolve_device(params.device)
        net = self._model(params.weights_path, device)
        multiple = 2**net.levels
        y = resample(audio, sr, RMVPE_SR)
        if len(y) < 1024:  # the STFT's reflect padding needs more than half a window
            y = np.pad(y, (0, 1024 - len(y)))
        x = torch.from_numpy(np.ascontiguousarray(y)).to(device)
        out = []
        with torch.inference_mode():
            mel, spec = self._log_mel(x, device)  # [N, 128], [513, N]
            n = mel.shape[0]
            for a in range(0, n, _CHUNK_FRAMES):
                lo, hi = max(0, a - _CONTEXT_FRAMES), min(n, a + _CHUNK_FRAMES + _CONTEXT_FRAMES)
                seg = mel[lo:hi].T[None]  # [1, 128, L]
                pad = -seg.shape[-1] % multiple
                if pad:
                    mode = "reflect" if pad < seg.shape[-1] else "replicate"
                    seg = F.pad(seg, (0, pad), mode=mode)
                sal = net(seg.transpose(1, 2)[:, None])[0]  # [L + pad, 360]
                out.append(sal[a - lo : a - lo + min(_CHUNK_FRAMES, n - a)].float().cpu())
        salience = torch.cat(out).numpy()
        thr = DEFAULT_THRESHOLD if params.voicing_threshold is None else params.voicing_threshold
        f0 = salience_to_f0(salience, thr)
        f0 = octave_guard(spec.float().cpu().numpy(), RMVPE_SR / N_FFT, f0)
        return f0, 0.0, RMVPE_HOP / RMVPE_SR
