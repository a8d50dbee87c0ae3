"""``python -m haniwa``: the same as the ``haniwa`` command."""

from haniwa.cli import main

if __name__ == "__main__":
    main()
