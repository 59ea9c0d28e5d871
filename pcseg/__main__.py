"""``python -m pcseg ...`` = ``pcseg ...`` (what ``torchrun -m pcseg train ...`` runs)."""

from pcseg.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
