from __future__ import annotations

from streamproc.cli import main

raise SystemExit(main())
