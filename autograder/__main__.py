"""python -m autograder: the tfdl command line."""
import sys

from .cli import main

sys.exit(main())
