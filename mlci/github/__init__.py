"""GitHub's REST API: HTTP, comments and checks, issues and pulls, Git Data, the runner's files."""
