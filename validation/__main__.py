import sys

from study.check import main

sys.exit(main(prog="python -m validation"))
