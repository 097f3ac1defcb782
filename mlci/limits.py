"""GitHub's size limits, in one place for the renderer, the publisher and the HTTP client."""

COMMENT_LIMIT = 65536  # characters of an issue or PR comment body
CHECK_TEXT_LIMIT = 65535  # characters of a check run's output.summary / output.text
SUMMARY_LIMIT = 1024 * 1024  # bytes of $GITHUB_STEP_SUMMARY per step
