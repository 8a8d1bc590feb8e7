"""Build a folder corpus of real recorded speech from unpacked Debian packages.

Reads UNPACKED/<package>/ (each package unpacked with `dpkg-deb -x`) and writes
    OUT/train/<speaker>/<clip>   labelled speakers of the train split and every unlabelled group
    OUT/dev/<speaker>/<clip>     labelled, reliable speakers of the dev languages (speaker-disjoint)
    OUT/labels.tsv               speaker, package, voice, language, reliable, labelled, person, split, clips
Clips are hard links to the unpacked files where the file system allows (copies otherwise); members of
the games' zip archives are extracted. `spk preprocess folder OUT/train` and `spk embed OUT/dev` read it.

Speakers follow ../../shared/FACTS.md ("Real speech in Debian packages"):
- labelled: tuxpaint-stamps-default (one voice per language, duplicates removed by content hash),
  klettres-data (one voice per language; `de` is two speakers, alpha and syllab), ktuberling-data
  (`nn` is TTS and `sr@*` copy `sr`: dropped; `ca`, `da`, `ru` hold two voices each: dropped, since
  nothing here can split them reliably), gcin-voice (two Mandarin voices, 3.ogg and 5.ogg),
  festvox-ru (one reader).
- unlabelled (acted voices, roles not people): hedgewars-data packs, megaglest-data acknowledgements,
  warzone2100-data (base.wz), openarena-data (pak0.pk3, without the Festival TTS voice). They are
  for label-free training (distillation) only and always land in train.
- one person, several labels: ktuberling `da` = tuxpaint `da`; klettres and ktuberling `de`, `nds`
  (and possibly `es`, `uk`, `en`) are taken to be the same person. The `person` column groups them and
  the split never separates a person.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

DEV_LANGUAGES = ("fr", "es", "nl", "de")  # several reliable speakers each: same-language non-target trials
SHARED_KDE_VOICES = {"da", "de", "nds", "es", "uk", "en"}  # klettres/ktuberling (and tuxpaint da) share a person


@dataclass
class Speaker:
    name: str
    package: str
    voice: str
    language: str
    reliable: bool
    labelled: bool
    person: str
    clips: list = field(default_factory=list)  # (source path or (zip, member), clip name)


def tuxpaint(root: Path) -> list[Speaker]:
    stamps = root / "tuxpaint-stamps-default/usr/share/tuxpaint/stamps"
    by_language: dict[str, Speaker] = {}
    seen: set[str] = set()
    for path in sorted(stamps.rglob("*_desc*.ogg")):
        stem = path.name[: -len(".ogg")].replace(".ogg", "")
        language = stem.split("_desc", 1)[1].lstrip("_") or "en"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:  # the same recording under several stamps
            continue
        seen.add(digest)
        person = f"tuxpaint_da+ktuberling_da" if language == "da" else f"tuxpaint_{language}"
        speaker = by_language.setdefault(language, Speaker(f"tuxpaint_{language}", "tuxpaint-stamps-default", "main", language,
                                                          True, True, person))
        speaker.clips.append((path, f"{path.parent.name}_{path.name}"))
    return list(by_language.values())


def klettres(root: Path) -> list[Speaker]:
    base = root / "klettres-data/usr/share/klettres"
    speakers = []
    for language_dir in sorted(path for path in base.iterdir() if path.is_dir() and path.name not in {"icons", "pics"}):
        language = language_dir.name
        groups = (["alpha"], ["syllab"]) if language == "de" else (["alpha", "syllab"],)
        for parts in groups:
            files = sorted(path for part in parts for path in (language_dir / part).glob("*.ogg"))
            if not files:
                continue
            voice = parts[0] if language == "de" else "main"
            person = f"kde_{language}" if language in SHARED_KDE_VOICES else f"klettres_{language}"
            if language == "de" and voice == "syllab":
                person = "klettres_de_syllab"  # the second German voice (~118 Hz); the alpha one is ktuberling's
            name = f"klettres_{language}" + (f"_{voice}" if language == "de" else "")
            speaker = Speaker(name, "klettres-data", voice, language.split("_")[0], True, True, person)
            speaker.clips = [(path, f"{path.parent.name}_{path.name}") for path in files]
            speakers.append(speaker)
    return speakers


def ktuberling(root: Path) -> list[Speaker]:
    base = root / "ktuberling-data/usr/share/ktuberling/sounds"
    speakers = []
    for language_dir in sorted(path for path in base.iterdir() if path.is_dir()):
        language = language_dir.name
        if language in {"nn", "ca", "da", "ru"} or "@" in language:
            continue  # TTS, two voices in one folder, or a copy of `sr`
        files = sorted(path for path in language_dir.iterdir() if path.suffix in {".ogg", ".wav", ".flac"})
        person = f"kde_{language}" if language in SHARED_KDE_VOICES else f"ktuberling_{language}"
        speaker = Speaker(f"ktuberling_{language}", "ktuberling-data", "main", language, True, True, person)
        speaker.clips = [(path, path.name) for path in files]
        speakers.append(speaker)
    return speakers


def gcin(root: Path) -> list[Speaker]:
    base = root / "gcin-voice/usr/share/gcin-voice/ogg"
    speakers = []
    for voice in ("3", "5"):
        speaker = Speaker(f"gcin_{voice}", "gcin-voice", voice, "zh", True, True, f"gcin_{voice}")
        speaker.clips = [(path, f"{path.parent.name}.ogg") for path in sorted(base.glob(f"*/{voice}.ogg"))]
        speakers.append(speaker)
    return speakers


def festvox_ru(root: Path) -> list[Speaker]:
    base = root / "festvox-ru/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav"
    speaker = Speaker("festvox_ru_nsh", "festvox-ru", "nsh", "ru", True, True, "festvox_ru_nsh")
    speaker.clips = [(path, path.name) for path in sorted(base.glob("*.wav"))]
    return [speaker]


def hedgewars(root: Path) -> list[Speaker]:
    base = root / "hedgewars-data/usr/share/games/hedgewars/Data/Sounds/voices"
    speakers = []
    for pack in sorted(path for path in base.iterdir() if path.is_dir()):
        speaker = Speaker(f"hedgewars_{pack.name}", "hedgewars-data", pack.name, _pack_language(pack.name), False, False,
                          f"hedgewars_{pack.name}")
        speaker.clips = [(path, path.name) for path in sorted(pack.glob("*.ogg"))]
        speakers.append(speaker)
    return speakers


def _pack_language(pack: str) -> str:
    suffix = pack.rsplit("_", 1)[-1] if "_" in pack else ""
    return suffix if suffix in {"es", "pl", "ru", "uk"} else ("ru" if pack == "Russian" else "en")


def megaglest(root: Path) -> list[Speaker]:
    base = root / "megaglest-data/usr/share/games/megaglest/techs/megapack"
    by_unit: dict[str, Speaker] = {}
    for path in sorted(base.rglob("*.wav")):
        stem = path.stem
        if "berserk" in stem or not any(f"_{kind}" in stem for kind in ("ack", "select")):
            continue
        unit = stem.rsplit("_", 1)[0]
        speaker = by_unit.setdefault(unit, Speaker(f"megaglest_{unit}", "megaglest-data", unit, "en", False, False,
                                                   f"megaglest_{unit}"))
        speaker.clips.append((path, f"{path.parent.parent.name}_{path.name}"))
    return list(by_unit.values())


def zipped(root: Path, package: str, archive: str, folders: tuple[str, ...], exclude: tuple[str, ...] = ()) -> list[Speaker]:
    path = root / package / archive
    speakers: dict[str, Speaker] = {}
    with zipfile.ZipFile(path) as bundle:
        for member in sorted(bundle.namelist()):
            if not member.lower().endswith((".ogg", ".wav")) or not member.startswith(folders) or member.startswith(exclude):
                continue
            group = member.split("/")[-2]
            speaker = speakers.setdefault(group, Speaker(f"{package.split('-')[0]}_{group}", package, group, "en", False, False,
                                                         f"{package.split('-')[0]}_{group}"))
            speaker.clips.append(((path, member), member.replace("/", "_")))
    return list(speakers.values())


def warzone(root: Path) -> list[Speaker]:
    return zipped(root, "warzone2100-data", "usr/share/games/warzone2100/base.wz", ("audio/", "sequenceaudio/"))


def openarena(root: Path) -> list[Speaker]:
    return zipped(root, "openarena-data", "usr/share/games/openarena/baseoa/pak0.pk3",
                  ("sound/voices/rott/", "sound/player/sarge/"), exclude=("sound/voices/festivoxmale",))


READERS = {"tuxpaint-stamps-default": tuxpaint, "klettres-data": klettres, "ktuberling-data": ktuberling,
           "gcin-voice": gcin, "festvox-ru": festvox_ru, "hedgewars-data": hedgewars, "megaglest-data": megaglest,
           "warzone2100-data": warzone, "openarena-data": openarena}


def split_of(speaker: Speaker, dev_persons: set[str]) -> str:
    return "dev" if speaker.person in dev_persons else "train"


def dev_persons_of(speakers: list[Speaker], dev_languages: tuple[str, ...]) -> set[str]:
    """Every person with a reliable labelled voice in a dev language; a person is never split."""
    return {speaker.person for speaker in speakers if speaker.labelled and speaker.reliable and speaker.language in dev_languages}


def place(source, target: Path) -> None:
    """Put `source` (a file, or an (archive, member) pair of a zip) at `target`: a hard link, a copy
    where the file system refuses one, the extracted member for a zip; an existing target is kept."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, tuple):
        archive, member = source
        with zipfile.ZipFile(archive) as bundle, bundle.open(member) as data, open(target, "wb") as out:
            shutil.copyfileobj(data, out)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("unpacked", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dev-languages", default=" ".join(DEV_LANGUAGES))
    args = parser.parse_args()
    speakers = [speaker for package, read in READERS.items() if (args.unpacked / package).is_dir()
                for speaker in read(args.unpacked)]
    speakers = [speaker for speaker in speakers if speaker.clips]
    dev_persons = dev_persons_of(speakers, tuple(args.dev_languages.split()))
    rows = []
    for speaker in speakers:
        split = split_of(speaker, dev_persons)
        for source, clip in speaker.clips:
            place(source, args.out / split / speaker.name / clip)
        rows.append({"speaker": speaker.name, "package": speaker.package, "voice": speaker.voice,
                     "language": speaker.language, "reliable": speaker.reliable, "labelled": speaker.labelled,
                     "person": speaker.person, "split": split, "clips": len(speaker.clips)})
    with open(args.out / "labels.tsv", "w", newline="") as table:
        writer = csv.DictWriter(table, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    counts = defaultdict(int)
    for row in rows:
        counts[row["split"], row["labelled"]] += row["clips"]
    print(f"{len(rows)} speakers; clips: " + ", ".join(f"{split}{'' if labelled else ' (unlabelled)'} {count}"
                                                    for (split, labelled), count in sorted(counts.items())))


if __name__ == "__main__":
    main()
