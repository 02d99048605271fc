"""The HTML channel: server-rendered pages, static assets vendored in the repository."""
