"""DVC's plots at both revisions: collected, rendered as Markdown, rendered as PNGs."""
