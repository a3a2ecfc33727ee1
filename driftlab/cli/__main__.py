"""``python -m driftlab.cli``: the ``driftlab`` command."""

from driftlab.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
