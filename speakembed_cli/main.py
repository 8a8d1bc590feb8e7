"""`spk`: the SpeakEmbed command-line suite. Commands live in `speakembed.commands.*`; each is a
thin wrapper that builds a config, calls a pipeline and renders its report. Heavy libraries
(torch) are imported inside the commands so that `spk --help` answers at once."""

from __future__ import annotations

import typer

from speakembed import __version__
from speakembed.commands import (calibrate, clone, diarise, embed, enrol, evaluate, evaluate_identification, identify,
                                 preprocess, train, ui, verify)
from speakembed.commands.options import multi_value_command

def _exit_code_epilog() -> str:
    from speakembed.pipelines.base.errors import EXIT_CODES

    return "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())


app = typer.Typer(
    name="spk",
    help="Speaker embeddings, verification and diarisation — offline, on CPU or GPU.",
    epilog=_exit_code_epilog(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("preprocess", help=preprocess.HELP)(preprocess.preprocess)
app.command("train", help=train.HELP)(train.train)
app.command("embed", help=embed.HELP)(embed.embed)
app.command("verify", help=verify.HELP)(verify.verify)
app.command("calibrate", help=calibrate.HELP)(calibrate.calibrate)
app.command("diarise", help=diarise.HELP, cls=multi_value_command("--refs", "-r"))(diarise.diarise)
app.command("clone", help=clone.HELP)(clone.clone)
app.command("enrol", help=enrol.HELP)(enrol.enrol)
app.command("identify", help=identify.HELP)(identify.identify)
app.command("ui", help=ui.HELP)(ui.ui)
evaluate.app.command("identification", help=evaluate_identification.HELP)(evaluate_identification.identification)
app.add_typer(evaluate.app, name="evaluate")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"spk {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Speaker embeddings, verification and diarisation — offline, on CPU or GPU."""


if __name__ == "__main__":  # `python -m speakembed.main`, as torchrun launches it
    app()
