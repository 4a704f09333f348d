"""python -m kcheckpoint"""

from kcheckpoint.cli import run

run()
