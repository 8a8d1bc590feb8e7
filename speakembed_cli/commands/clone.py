"""`spk clone`: speech in a reference voice, from text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import options
from speakembed.console import progress_bar, stdout, user_errors

HELP = """Speak TEXT in the voice of the reference recording(s): spk clone ref.wav [more.wav ...] "Hello there." --out hello.wav

The references are embedded by the speaker encoder, the clone adapter turns that embedding into a Kokoro-82M voice (a mixture of its stock voices plus a pitch/formant shift), Kokoro speaks the text (English; long text is split into sentences); --match-pitch also shifts the pitch to the reference's median. --refine N searches N voices (half spread over the voice space, half around the best) for the one that the conditioning encoder and --refine-with all find most like the reference. The output (24 kHz) is tagged as synthetic speech in its metadata. Only clone voices with their owner's consent; never use it to impersonate anyone.
Needs the clone extra: pip install 'speakembed\\[clone]' and apt-get install espeak-ng."""


def clone(
    arguments: list[str] = typer.Argument(..., metavar="REF... TEXT", help="Reference recording(s), then the text (omit the text with --text-file)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .wav or .flac (its folder must exist)."),
    text_file: Optional[Path] = typer.Option(None, "--text-file", help="Read the text from this UTF-8 file."),
    speed: float = typer.Option(1.0, "--speed", help="Speaking rate (1.0 natural, 1.2 faster)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --refine search."),
    refine: int = typer.Option(0, "--refine", min=0, help="Voices searched for the one most like the reference (0: the adapter's voice; 40 takes ~3 min on 2 CPU cores)."),
    refine_with: str = options.REFINE_WITH,
    match_pitch: bool = options.MATCH_PITCH,
    encoder: str = options.ENCODER,
    checkpoint: Optional[Path] = options.CHECKPOINT,
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="Clone adapter folder (default: the shipped one for --encoder)."),
    kokoro_model: Optional[Path] = typer.Option(None, "--kokoro-model", help="Official kokoro-v1.0 ONNX file instead of the packaged model."),
    kokoro_voices: Optional[Path] = typer.Option(None, "--kokoro-voices", help="Official voices-v1.0.bin (with --adapter trained on its voices)."),
    vad: str = options.VAD,
    device: str = options.DEVICE,
    as_json: bool = options.AS_JSON,
    quiet: bool = options.QUIET,
) -> None:
    """`spk clone`: speak text in the voice of reference recordings."""
    from speakembed.pipelines import clone as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS

    options.check_choice(vad, VAD_METHODS, "--vad")
    references, text = _references_and_text(arguments, text_file)
    config = pipeline.CloneConfig(
        encoder=encoder, checkpoint=_text(checkpoint), adapter=_text(adapter), speed=speed, seed=seed, refine=refine,
        refine_with=options.encoder_names(refine_with), match_pitch=match_pitch, vad=vad, kokoro_model=_text(kokoro_model), kokoro_voices=_text(kokoro_voices), device=device,
    )
    with user_errors(), progress_bar(not quiet) as progress:
        result = pipeline.clone(references, text, out, config=config, progress=progress)
    summary = {"out": str(result.out_path), "duration_s": round(result.duration_s, 2),
               "real_time_factor": round(result.synthesis_s / max(result.duration_s, 1e-9), 3),
               "similarity_to_reference": round(result.similarity, 4), "sentences": len(result.sentences),
               "voice": result.voice.describe(result.voice_names)}
    if as_json:
        stdout.print_json(json.dumps(summary))
        return
    stdout.print(f"wrote {summary['out']} ({summary['duration_s']} s, real-time factor {summary['real_time_factor']}); "
                 f"similarity to the reference {summary['similarity_to_reference']}; voice: {summary['voice']}", highlight=False)


def _references_and_text(arguments: list[str], text_file: Path | None) -> tuple[list[str], str]:
    if text_file is not None:
        with user_errors():
            return arguments, _read_text(text_file)
    if len(arguments) < 2:
        raise typer.BadParameter('give one or more reference recordings and then the text, e.g. ref.wav "Hello."',
                                 param_hint="REF... TEXT")
    return arguments[:-1], arguments[-1]


def _read_text(path: Path) -> str:
    from speakembed.pipelines.base.errors import InputNotFoundError, UsageError

    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such text file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
