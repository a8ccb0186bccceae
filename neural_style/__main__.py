"""``python -m neural_style``: the same as the ``neural-style`` command."""

from neural_style.cli import neural_style

if __name__ == "__main__":
    neural_style()
