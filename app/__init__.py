"""The shape service: settings, HTTP API, jobs, web page and the `gmvit` command line."""
