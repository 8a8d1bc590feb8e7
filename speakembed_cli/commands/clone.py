"""`spk clone`: speech in a reference voice, from text."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import options
from speakembed.console import progress_bar, stderr, stdout, user_errors

HELP = """Speak TEXT in the voice of the reference recording(s): spk clone ref.wav [more.wav ...] "Hello there." --out hello.wav

The references are embedded by the speaker encoder, the clone adapter turns that embedding into a Kokoro-82M voice (a mixture of its stock voices plus a pitch/formant shift), Kokoro speaks the text (in --language, default en-us; long text is split into sentences); --match-pitch also shifts the pitch to the reference's median. --voice af_heart (or a mixture, af_heart:0.6,bm_george:0.4) speaks in a stock voice instead, with or without a reference; --prosody-voice mixes the prosody half of the style (rhythm, intonation) apart; --list-voices lists the stock voices (the 54 official ones once `python -m speakembed.models.engines.kokoro_voices fetch` has cached them from npm, else 5). --refine N searches N voices (half spread over the voice space, half around the best) for the one that the conditioning encoder and --refine-with all find most like the reference. The output (24 kHz) is tagged as synthetic speech in its metadata. Only clone voices with their owner's consent; never use it to impersonate anyone.
Needs the clone extra: pip install 'speakembed\\[clone]' and apt-get install espeak-ng."""


def clone(
    arguments: Optional[list[str]] = typer.Argument(None, metavar="REF... TEXT", help="Reference recording(s), then the text (omit the text with --text-file; the references with --voice)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output .wav or .flac (required; its folder is created)."),
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
    kokoro_voices: Optional[Path] = typer.Option(None, "--kokoro-voices", help="Kokoro voice tables: voices-v1.0.bin (npz), a kokoro-js .tgz or a folder of .bin tables (default: the 54 cached from npm, else the 5 packaged)."),
    language: str = typer.Option("en-us", "--language", help="Language of the text, as espeak-ng names it (espeak-ng --voices: en-us, en-gb, fr-fr, es, ja, cmn, ...); any voice speaks any language."),
    voice: Optional[str] = typer.Option(None, "--voice", help="Speak in a stock voice or mixture instead of the adapter's: af_heart, or af_heart:0.6,bm_george:0.4 (see --list-voices)."),
    prosody_voice: Optional[str] = typer.Option(None, "--prosody-voice", help="Stock voice or mixture for the prosody half of the style (rhythm, intonation); default: as the voice."),
    list_voices: bool = typer.Option(False, "--list-voices", help="List the stock voices (of --kokoro-voices, else the installed ones) and exit."),
    vad: str = options.VAD,
    device: str = options.DEVICE,
    as_json: bool = options.AS_JSON,
    quiet: bool = options.QUIET,
) -> None:
    """`spk clone`: speak text in the voice of reference recordings."""
    from speakembed.pipelines import clone as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS

    from speakembed.models.engines.kokoro_voices import KokoroVoicesWarning

    if list_voices:
        _list_voices(_text(kokoro_voices), as_json)
        return
    options.check_choice(vad, VAD_METHODS, "--vad")
    if out is None:
        raise typer.BadParameter("give the output file, e.g. --out hello.wav", param_hint="'--out' / '-o'")
    references, text = _references_and_text(arguments or [], text_file, needs_reference=voice is None)
    config = pipeline.CloneConfig(
        encoder=encoder, checkpoint=_text(checkpoint), adapter=_text(adapter), speed=speed, seed=seed, refine=refine,
        refine_with=options.encoder_names(refine_with), match_pitch=match_pitch, vad=vad, kokoro_model=_text(kokoro_model),
        kokoro_voices=_text(kokoro_voices), device=device, language=language, voice=voice, prosody_voice=prosody_voice,
    )
    # The fallback to the five packaged voices is said once, after the result: an error stays one line.
    with user_errors(), progress_bar(not quiet) as progress, warnings.catch_warnings(record=True, action="always", category=KokoroVoicesWarning) as notes:
        result = pipeline.clone(references, text, out, config=config, progress=progress)
    similarity = None if result.similarity is None else round(result.similarity, 4)
    summary = {"out": str(result.out_path), "duration_s": round(result.duration_s, 2),
               "real_time_factor": round(result.synthesis_s / max(result.duration_s, 1e-9), 3),
               "similarity_to_reference": similarity, "sentences": len(result.sentences),
               "voice": result.voice.describe(result.voice_names), "language": config.language}
    _print_notes(notes)
    if as_json:
        stdout.print_json(json.dumps(summary))
        return
    said = "" if similarity is None else f"; similarity to the reference {similarity}"
    stdout.print(f"wrote {summary['out']} ({summary['duration_s']} s, real-time factor {summary['real_time_factor']}){said}; "
                 f"voice: {summary['voice']}", highlight=False, soft_wrap=True)


def _list_voices(kokoro_voices: str | None, as_json: bool) -> None:
    from speakembed.models.engines.kokoro_voices import KokoroVoicesWarning, describe_voice, load_voices

    with user_errors(), warnings.catch_warnings(record=True, action="always", category=KokoroVoicesWarning) as notes:
        tables, source = load_voices(kokoro_voices)
    rows = [describe_voice(name) for name in tables]
    _print_notes(notes)
    if as_json:
        stdout.print_json(json.dumps({"source": source, "voices": rows}))
        return
    stdout.print(f"{len(rows)} voices from {source}", highlight=False, soft_wrap=True)
    for row in rows:
        stdout.print(f"{row['voice']:<16} {row['language'] or '?':<22} {row['gender'] or '?':<7} --language {row['espeak_language'] or '?'}",
                     highlight=False, soft_wrap=True)


def _print_notes(notes: list) -> None:
    from speakembed.models.engines.kokoro_voices import KokoroVoicesWarning

    for note in (note for note in notes if issubclass(note.category, KokoroVoicesWarning)):
        stderr.print(f"warning: {note.message}", highlight=False, soft_wrap=True)


def _references_and_text(arguments: list[str], text_file: Path | None, needs_reference: bool = True) -> tuple[list[str], str]:
    if text_file is not None:
        with user_errors():
            references, text = arguments, _read_text(text_file)
    elif arguments:
        references, text = arguments[:-1], arguments[-1]
    else:
        references, text = [], None
    if text is None or (needs_reference and not references):
        raise typer.BadParameter('give one or more reference recordings and then the text, e.g. ref.wav "Hello." '
                                 '(or --voice af_heart "Hello.")', param_hint="REF... TEXT")
    return references, text


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
