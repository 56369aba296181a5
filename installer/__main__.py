from installer.cli import main
import sys

sys.exit(main())
