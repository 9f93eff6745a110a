import sys

from production.cli import main

if __name__ == "__main__":
    sys.exit(main())
