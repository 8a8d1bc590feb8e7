"""Mel filterbank frontend computed in torch, batched.

`MelFrontend` reproduces the features Resemblyzer's GE2E encoder was trained on: librosa's
`melspectrogram` defaults at 16 kHz with a 25 ms Hann window (n_fft 400), 10 ms hop, centred
frames with zero padding, power 2 and 40 Slaney-normalised mel bands. The features are linear
power, not log: the pretrained network expects exactly that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MelConfig:
    """Mel frontend parameters: sample rate (Hz), window and hop (ms), bands, and whether features are log-compressed."""
    sample_rate: int = 16000
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 40
    log: bool = False  # log-mel for our own encoders; the pretrained LSTM uses linear power

    @property
    def n_fft(self) -> int:
        """FFT size in samples (the window length)."""
        return int(self.sample_rate * self.window_ms / 1000)

    @property
    def hop_length(self) -> int:
        """Hop in samples."""
        return int(self.sample_rate * self.hop_ms / 1000)

    def to_dict(self) -> dict:
        """The parameters as JSON-ready values (store attrs, config.json)."""
        return asdict(self)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Mel filters (n_mels, n_fft // 2 + 1), identical to `librosa.filters.mel` defaults
    (Slaney mel scale, area-normalised triangles, 0 Hz to Nyquist)."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2)
    mel_freqs = _mel_to_hz(mel_points)
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights.astype(np.float32)


def _hz_to_mel(hz):
    """Slaney's scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


class MelFrontend(torch.nn.Module):
    """Waveforms (batch, samples) at `config.sample_rate` -> mel features (batch, frames, n_mels).

    A clip of n samples gives 1 + n // hop_length frames (centred frames, as librosa).
    """

    def __init__(self, config: MelConfig = MelConfig()):
        super().__init__()
        self.config = config
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)
        filters = slaney_mel_filterbank(config.sample_rate, config.n_fft, config.n_mels)
        self.register_buffer("mel_filters", torch.from_numpy(filters), persistent=False)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` samples."""
        return 1 + num_samples // self.config.hop_length

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Waveforms (..., samples) -> mel features (..., 1 + samples // hop_length, n_mels), float32:
        linear power, or natural log of (power + 1e-6) when `config.log`."""
        spectrum = torch.stft(
            waveforms,
            n_fft=self.config.n_fft,
            hop_length=self.config.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spectrum.real.square() + spectrum.imag.square()
        mels = torch.matmul(self.mel_filters, power).transpose(-1, -2)
        return torch.log(mels + 1e-6) if self.config.log else mels


WHISPER_MEL = MelConfig(sample_rate=16000, window_ms=25.0, hop_ms=10.0, n_mels=80, log=True)


def whisper_log_mel(waveforms: torch.Tensor) -> torch.Tensor:
    """Whisper's log-mel input: 16 kHz waveforms (batch, samples) -> (batch, 80, samples // 160).

    Power STFT (n_fft 400, hop 160, Hann, reflect-centred, last frame dropped), Slaney mel filters,
    log10 clamped 8 below each waveform's maximum, scaled (x + 4) / 4 (roughly [-1, 1]); float32.
    Whisper pads every input to 30 s (480000 samples -> 3000 frames) before this.
    """
    config = WHISPER_MEL
    window = torch.hann_window(config.n_fft, device=waveforms.device)
    spectrum = torch.stft(waveforms, config.n_fft, config.hop_length, window=window, center=True,
                          pad_mode="reflect", return_complex=True)
    power = spectrum[..., :-1].abs().square()
    filters = torch.from_numpy(slaney_mel_filterbank(config.sample_rate, config.n_fft, config.n_mels))
    log_mels = torch.clamp(filters.to(power.device) @ power, min=1e-10).log10()
    log_mels = torch.maximum(log_mels, log_mels.amax(dim=(-2, -1), keepdim=True) - 8.0)
    return (log_mels + 4.0) / 4.0


class WhisperFrontend(torch.nn.Module):
    """A 16 kHz waveform (samples,) -> Whisper log-mel frames (samples // 160, 80), exactly the
    first frames of the features of the same audio zero-padded to Whisper's 30 s window.

    Frames-first like `MelFrontend`; `config` is `WHISPER_MEL` (80 bands, 10 ms hop).
    """

    def __init__(self):
        super().__init__()
        self.config = WHISPER_MEL

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` samples (10 ms hop)."""
        return num_samples // self.config.hop_length

    @torch.no_grad()
    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveforms (..., samples) at 16 kHz -> Whisper log-mel (..., samples // 160, 80)."""
        # The zeros stand in for the 30 s padding: the last frames see silence, not reflected audio.
        padded = torch.nn.functional.pad(waveform, (0, self.config.n_fft))
        return whisper_log_mel(padded)[..., : self.num_frames(waveform.shape[-1])].transpose(-1, -2)

