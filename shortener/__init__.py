"""The link side of Touchlink: stages, touchpoints, links, API keys, redirects and QR codes."""
