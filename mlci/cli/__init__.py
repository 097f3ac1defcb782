"""The click commands: flags -> one library call -> render. Nothing imports this package."""
