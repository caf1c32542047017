"""Install size: a fresh virtualenv with `pip install .`, before and after trimming the lemma
tables of spacy-lookups-data to English and Spanish (contrib/trim_lookups.py).

    .venv/bin/python bench/install_size.py

Prints one JSON line per figure, in MiB as `du -sh` counts them: the whole venv, its largest
packages, and spacy-lookups-data before and after the trim. Takes a few minutes (pip).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from _common import emit

ROOT = Path(__file__).resolve().parents[1]


def du(path: Path) -> int:
    """Disk usage in bytes, as `du -s` counts it (blocks, not file sizes)."""
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def largest(site: Path, count: int = 8) -> list[tuple[str, float]]:
    sizes = [(p.name, du(p) / 2**20) for p in site.iterdir() if p.is_dir()]
    return sorted(sizes, key=lambda s: -s[1])[:count]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="watcher-size-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        site = next((venv / "lib").glob("python3*/site-packages"))
        lookups = site / "spacy_lookups_data"
        emit({"what": "venv", "trimmed": False, "MiB": round(du(venv) / 2**20, 1)})
        emit({"what": "spacy-lookups-data", "trimmed": False, "MiB": round(du(lookups) / 2**20, 1)})
        emit({"what": "largest packages", "MiB": [(n, round(s, 1)) for n, s in largest(site)]})
        trim = ROOT / "contrib" / "trim_lookups.py"
        subprocess.run([str(venv / "bin" / "python"), str(trim), "en", "es"], check=True)
        emit({"what": "venv", "trimmed": True, "MiB": round(du(venv) / 2**20, 1)})
        emit({"what": "spacy-lookups-data", "trimmed": True, "MiB": round(du(lookups) / 2**20, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
