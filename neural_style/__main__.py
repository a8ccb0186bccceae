"""``python -m neural_style``: the same as the ``neural-style`` command."""

from neural_style.cli.stylize import main

if __name__ == "__main__":
    main()
