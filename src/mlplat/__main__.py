"""`python -m mlplat` runs the command-line interface."""

from mlplat.cli import main

if __name__ == "__main__":
    main()
