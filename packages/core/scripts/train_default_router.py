"""Train the default policy's difficulty estimate and write the artifact shipped in the core.

    uv run python packages/core/scripts/train_default_router.py            # rewrite the shipped file
    uv run python packages/core/scripts/train_default_router.py --check    # exit 1 if it would differ

Trained on every bundled outcome table (about a minute on two cores); running it again writes the same
bytes (fixed seed, rows sorted, fixed method, no training time in the file). Needs scikit-learn.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

from gearshift.learning._default_training import save_default_router, train_default_router

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "gearshift" / "learning" / "default_router.json"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare with the shipped file, write nothing")
    parser.add_argument(
        "--out", type=Path, default=SHIPPED, help="where to write (default: the shipped file)"
    )
    args = parser.parse_args()
    router = train_default_router()
    if args.check:
        with tempfile.TemporaryDirectory() as folder:
            fresh = Path(folder) / "default_router.json"
            save_default_router(router, fresh)
            same = fresh.read_bytes() == SHIPPED.read_bytes()
            digest = hashlib.sha256(fresh.read_bytes()).hexdigest()
        print(f"{'identical to' if same else 'DIFFERS from'} {SHIPPED} (sha256 {digest})")
        return 0 if same else 1
    size = save_default_router(router, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out}: {size:,} bytes, sha256 {digest}; {router.operating_point.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
