from __future__ import annotations

from mlci.cli.main import main

main()
