"""``python -m neural_style.serve``: the same as the ``neural-style-serve`` command."""

from neural_style.cli import neural_style_serve

if __name__ == "__main__":
    neural_style_serve()
