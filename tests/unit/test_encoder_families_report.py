"""benchmarks/encoder_families.py's pure helpers: the report table, the speed ratios, the person
table of the real corpus and the --checkpoint option (no benchmark is run)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "encoder_families.py"


@pytest.fixture(scope="module")
def families():
    """The benchmark script as a module (it is not in a package), sys.path and sys.modules restored after."""
    spec = importlib.util.spec_from_file_location("encoder_families", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = saved_path
        sys.modules.pop(spec.name, None)
        sys.modules.pop("embed_speed", None)


def _scores(eer_pct, wall_s, rss_mb=400.0):
    return {"eer_pct": eer_pct, "min_dcf_01": 0.5, "top1": 0.9, "top5": None, "wall_s": wall_s, "peak_rss_mb": rss_mb}


def test_table_puts_each_corpus_side_by_side_and_ratios_speed_to_the_lstm(families):
    synthetic = families.Corpus("synthetic", "syn/audio", "syn/trials.tsv", audio_s=100.0)
    real = families.Corpus("real", "real/audio", "real/trials.txt", missing="not built", placeholder="not built")
    results = [{"encoder": "lstm", "dimension": 256, "corpora": {"synthetic": _scores(4.5, 4.0)}},
               {"encoder": "ct-real", "dimension": 128, "corpora": {"synthetic": _scores(3.25, 2.0, 300.0)}}]
    families.add_speed(results, synthetic)
    columns = families.table_columns([synthetic, real])
    rows = [families.table_row(result, [synthetic, real]) for result in results]

    assert columns[:3] == ["encoder", "dim", "synthetic EER %"]
    assert columns.index("real EER %") == 6 and columns[-3:] == ["RTF", "speed-up (x lstm)", "peak RSS MB"]
    assert rows[1] == ["ct-real", "128", "3.25", "0.500", "90.0", "-", "not built", "not built", "not built",
                       "not built", "0.0200", "2.00x", "300"]
    assert rows[0][-3:] == ["0.0400", "1.00x", "400"]


def test_person_table_joins_the_folders_of_one_person(families, tmp_path):
    audio = tmp_path / "audio"
    for folder in ("ktuberling_de", "klettres_de", "tuxpaint_fr"):
        (audio / folder).mkdir(parents=True)
        (audio / folder / "apple.ogg").write_bytes(b"")
    labels = tmp_path / "labels.tsv"
    labels.write_text("speaker\tperson\nktuberling_de\tkde_de\nklettres_de\tkde_de\n")

    with open(families.write_person_table(audio, labels, tmp_path / "speakers.tsv"), newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))

    assert rows == [["item_id", "speaker"], ["klettres_de/apple.ogg", "kde_de"], ["ktuberling_de/apple.ogg", "kde_de"],
                    ["tuxpaint_fr/apple.ogg", "tuxpaint_fr"]]


@pytest.mark.parametrize("value, message", [
    ("ct-real", "give NAME=DIR"),
    ("lstm={folder}", "the name 'lstm' is taken"),
    ("ct-real={folder}/missing", "not a checkpoint folder"),
])
def test_bad_checkpoint_options_stop_with_one_line(families, tmp_path, value, message):
    with pytest.raises(SystemExit, match=message):
        families.parse_checkpoints([value.format(folder=tmp_path)], ("lstm", "conv-transformer"))


def test_a_checkpoint_folder_is_named_by_its_option(families, tmp_path):
    for name in ("config.json", "model.safetensors", "meta.json"):
        (tmp_path / name).write_text("{}")

    assert families.parse_checkpoints([f"ct-real={tmp_path}"], ("lstm",)) == {"ct-real": tmp_path}
